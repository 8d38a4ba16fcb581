/**
 * A device's flows (docs/spin-protocol.md §3): per peer node a chain of
 * flows, one per destination port or ICMP type, with their counters. A peer
 * is referenced (`refs`, so it does not expire) while a device has a flow to
 * it. The node model (model.ts) calls these; `peerOf` finds a live node by id.
 */
import type { DeviceFlow, SpinNode } from './node.js';

export type PeerOf = (id: number) => SpinNode | undefined;

/** Counts traffic of a device with `peer` (both directions' packets and bytes) at `nowS` (Unix seconds). */
export function countFlow(
  device: SpinNode,
  peer: SpinNode,
  dstPort: number,
  icmpType: number,
  packets: number,
  bytes: number,
  nowS: number,
): void {
  if (device === peer) return;
  const flows = (device.flows ??= new Map());
  const head = flows.get(peer.id);
  let f = head;
  while (f && (f.dstPort !== dstPort || f.icmpType !== icmpType)) f = f.next;
  if (!f) {
    f = { to: peer.id, dstPort, icmpType, packets: 0, bytes: 0, lastseen: 0, next: head };
    flows.set(peer.id, f);
    device.flowCount++;
    if (!head) peer.refs++;
  }
  f.packets += packets;
  f.bytes += bytes;
  f.lastseen = nowS;
}

/** Every flow of a device. */
export function flowsOf(device: SpinNode): DeviceFlow[] {
  const out: DeviceFlow[] = [];
  if (device.flows)
    for (const head of device.flows.values()) for (let f: DeviceFlow | undefined = head; f; f = f.next) out.push(f);
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
    const flows = d.flows;
    if (!flows || d.flowCount === 0) continue;
    let idle: DeviceFlow[] | undefined;
    for (const head of flows.values())
      for (let f: DeviceFlow | undefined = head; f; f = f.next) if (now - f.lastseen > minIdleS) (idle ??= []).push(f);
    if (!idle) continue;
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

/** Unlinks one flow of device `d`; the peer loses d's reference with d's last flow to it. */
function dropFlow(d: SpinNode, f: DeviceFlow, peerOf: PeerOf): void {
  const flows = d.flows!;
  const head = flows.get(f.to);
  if (head === f) {
    if (f.next) flows.set(f.to, f.next);
    else {
      flows.delete(f.to);
      const peer = peerOf(f.to);
      if (peer) peer.refs--;
    }
  } else {
    let p = head;
    while (p && p.next !== f) p = p.next;
    if (!p) return;
    p.next = f.next;
  }
  d.flowCount--;
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
export function takeChain(dev: SpinNode, peer: SpinNode): DeviceFlow | undefined {
  const head = dev.flows?.get(peer.id);
  if (!head) return undefined;
  dev.flows!.delete(peer.id);
  peer.refs--;
  for (let f: DeviceFlow | undefined = head; f; f = f.next) dev.flowCount--;
  return head;
}

/** Adds (a copy of) flow `f` to `dev`'s table pointing at `peer`, summing with a flow already there. */
export function mergeFlow(dev: SpinNode, f: DeviceFlow, peer: SpinNode): void {
  const flows = (dev.flows ??= new Map());
  const head = flows.get(peer.id);
  let cur = head;
  while (cur && (cur.dstPort !== f.dstPort || cur.icmpType !== f.icmpType)) cur = cur.next;
  if (cur) {
    cur.packets += f.packets;
    cur.bytes += f.bytes;
    cur.lastseen = Math.max(cur.lastseen, f.lastseen);
    return;
  }
  flows.set(peer.id, { ...f, to: peer.id, next: head });
  dev.flowCount++;
  if (!head) peer.refs++;
}
