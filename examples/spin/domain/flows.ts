/**
 * A device's flows (docs/spin-protocol.md §3): per peer node its flows, one
 * per destination port or ICMP type, with their counters, found by key (a
 * port scan makes 65 535 flows to one peer: walking a list per record made
 * that 12 s of CPU). A peer is referenced (`refs`, so it does not expire)
 * while a device has a flow to it. A device keeps at most
 * MAX_FLOWS_PER_DEVICE flows: past it, its least recently seen eighth goes.
 * The node model (model.ts) calls these; `peerOf` finds a live node by id.
 */
import type { DeviceFlow, PeerFlows, SpinNode } from './node.js';

export type PeerOf = (id: number) => SpinNode | undefined;

/** Flows one device keeps (spind keeps every one; a scan of all ports, or one packet to each of 200 000 hosts). */
export const MAX_FLOWS_PER_DEVICE = 4096;

/** A flow's key among a device's flows to one peer: its port and ICMP type. */
const flowKey = (dstPort: number, icmpType: number): number => dstPort * 65536 + icmpType;
const keyOf = (f: DeviceFlow): number => flowKey(f.dstPort, f.icmpType);

/** The flow with key `k` among a device's flows to one peer. */
function flowAt(p: PeerFlows | undefined, k: number): DeviceFlow | undefined {
  if (p === undefined) return undefined;
  if (p instanceof Map) return p.get(k);
  return keyOf(p) === k ? p : undefined;
}

/** A device's flows to one peer, as a list. */
const listOf = (p: PeerFlows): DeviceFlow[] => (p instanceof Map ? [...p.values()] : [p]);

/** Counts traffic of a device with `peer` (both directions' packets and bytes) at `nowS` (Unix seconds). */
export function countFlow(
  device: SpinNode,
  peer: SpinNode,
  dstPort: number,
  icmpType: number,
  packets: number,
  bytes: number,
  nowS: number,
  peerOf: PeerOf,
): void {
  if (device === peer) return;
  const k = flowKey(dstPort, icmpType);
  let f = flowAt(device.flows?.get(peer.id), k);
  if (!f) {
    if (device.flowCount >= MAX_FLOWS_PER_DEVICE) dropOldest(device, MAX_FLOWS_PER_DEVICE / 8, peerOf);
    f = { to: peer.id, dstPort, icmpType, packets: 0, bytes: 0, lastseen: 0 };
    add(device, peer, k, f);
  }
  f.packets += packets;
  f.bytes += bytes;
  f.lastseen = nowS;
}

/** Puts a new flow in; the peer gains a reference with the device's first flow to it. */
function add(device: SpinNode, peer: SpinNode, k: number, f: DeviceFlow): void {
  const flows = (device.flows ??= new Map());
  const had = flows.get(peer.id);
  if (had === undefined) {
    flows.set(peer.id, f);
    peer.refs++;
  } else if (had instanceof Map) had.set(k, f);
  else
    flows.set(
      peer.id,
      new Map([
        [keyOf(had), had],
        [k, f],
      ]),
    );
  device.flowCount++;
}

/** Every flow of a device. */
export function flowsOf(device: SpinNode): DeviceFlow[] {
  const out: DeviceFlow[] = [];
  if (device.flows)
    for (const p of device.flows.values())
      if (p instanceof Map) for (const f of p.values()) out.push(f);
      else out.push(p);
  return out;
}

/**
 * One aging pass (docs/spin-protocol.md#flow-aging) at `now` (Unix seconds):
 * a device with more than `keep` flows loses those idle longer than `idleMs`
 * (the longest idle first, down to `keep`); any flow idle longer than
 * `maxIdleMs` goes regardless. `held` flows (blocked ones) stay. Returns how
 * many flows went.
 */
export function ageFlows(
  devices: Iterable<SpinNode>,
  now: number,
  idleMs: number,
  keep: number,
  maxIdleMs: number,
  held: ((d: SpinNode, to: number) => boolean) | undefined,
  peerOf: PeerOf,
): number {
  const maxIdleS = maxIdleMs / 1000;
  const minIdleS = Math.min(idleMs, maxIdleMs) / 1000;
  let removed = 0;
  for (const d of devices) {
    if (d.flowCount === 0) continue;
    const idle = flowsOf(d).filter((f) => now - f.lastseen > minIdleS);
    if (idle.length === 0) continue;
    // Oldest first, unless every idle flow goes anyway.
    if (d.flowCount - idle.length < keep) idle.sort((a, b) => a.lastseen - b.lastseen);
    for (const f of idle) {
      if (d.flowCount <= keep && now - f.lastseen <= maxIdleS) continue;
      if (held?.(d, f.to)) continue;
      dropFlow(d, f, peerOf);
      removed++;
    }
  }
  return removed;
}

/** Drops the `n` least recently seen flows of `d` (a device at its cap). */
function dropOldest(d: SpinNode, n: number, peerOf: PeerOf): void {
  const all = flowsOf(d).sort((a, b) => a.lastseen - b.lastseen);
  for (const f of all.slice(0, n)) dropFlow(d, f, peerOf);
}

/**
 * Drops the least recently seen flows of all `devices` until `need` peers are held by no device (the node model
 * over its limit with every node held: one packet to each of 200 000 hosts). Only flows to peers that could then
 * go (`freeable`: no device, nothing keeps them, so no blocked flow) are dropped; the others stay whatever is
 * needed. Returns how many peers it freed.
 */
export function releasePeers(
  devices: Iterable<SpinNode>,
  need: number,
  peerOf: PeerOf,
  freeable: (peer: SpinNode) => boolean,
): number {
  const all: [SpinNode, DeviceFlow][] = [];
  for (const d of devices)
    for (const f of flowsOf(d)) {
      const peer = peerOf(f.to);
      if (peer && freeable(peer)) all.push([d, f]);
    }
  all.sort((a, b) => a[1].lastseen - b[1].lastseen);
  let freed = 0;
  for (const [d, f] of all) {
    if (freed >= need) break;
    dropFlow(d, f, peerOf);
    if (peerOf(f.to)?.refs === 0) freed++;
  }
  return freed;
}

/** Removes one flow of device `d`; the peer loses d's reference with d's last flow to it. */
function dropFlow(d: SpinNode, f: DeviceFlow, peerOf: PeerOf): void {
  const p = d.flows?.get(f.to);
  if (p === undefined) return;
  if (p instanceof Map) {
    if (!p.delete(keyOf(f))) return;
    d.flowCount--;
    if (p.size > 0) return;
  } else {
    if (p !== f) return;
    d.flowCount--;
  }
  d.flows!.delete(f.to);
  const peer = peerOf(f.to);
  if (peer) peer.refs--;
}

/** Drops every flow of `d` (releasing its peers). */
export function dropAllFlows(d: SpinNode, peerOf: PeerOf): void {
  if (!d.flows) return;
  for (const to of d.flows.keys()) {
    const peer = peerOf(to);
    if (peer) peer.refs--;
  }
  d.flows.clear();
  d.flowCount = 0;
}

/** Removes and returns `dev`'s flows to `peer` (releasing the reference). */
export function takeFlows(dev: SpinNode, peer: SpinNode): DeviceFlow[] {
  const p = dev.flows?.get(peer.id);
  if (p === undefined) return [];
  dev.flows!.delete(peer.id);
  peer.refs--;
  const taken = listOf(p);
  dev.flowCount -= taken.length;
  return taken;
}

/** Adds (a copy of) flow `f` to `dev`'s table pointing at `peer`, summing with a flow already there. */
export function mergeFlow(dev: SpinNode, f: DeviceFlow, peer: SpinNode): void {
  const k = flowKey(f.dstPort, f.icmpType);
  const cur = flowAt(dev.flows?.get(peer.id), k);
  if (cur) {
    cur.packets += f.packets;
    cur.bytes += f.bytes;
    cur.lastseen = Math.max(cur.lastseen, f.lastseen);
    return;
  }
  add(dev, peer, k, { ...f, to: peer.id });
}
