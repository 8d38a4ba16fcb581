/**
 * spind's 16 JSON-RPC methods (docs/spin-protocol.md §1.3/§1.4) plus the design note's (docs/spin-protocol.md §1.5)
 * get_devices / get_deviceflow. Each is a thin layer over the core's
 * queries and commands (core.ts): params typed by their schemas, results
 * shaped as spind's. Error texts and codes are spind's.
 */
import type { Core } from '../core.js';
import { compareDomains, parsePrefix, prefixContains, sortIps } from '../domain/ip.js';
import { type ListName, matchListName } from '../domain/lists.js';
import type { SpinNode } from '../domain/model.js';
import { arg, method, RpcDispatcher, RpcError, type RpcMethod } from './rpc.js';

export { RPC_LIMITS } from '../core.js';

/** Beyond spind: `force: 1` lets a block cut the router (domain/protect.ts). */
const FORCE = { force: arg.integer };

const UNKNOWN_LIST = "Unknown ip list name, should be 'ignore', 'block', or 'allow'";

function listOf(text: string): ListName {
  const l = matchListName(text);
  if (!l) throw new RpcError(UNKNOWN_LIST);
  return l;
}

/** `force` given and not 0. */
const forced = (force: number | undefined) => force !== undefined && force !== 0;

function deviceFlows(core: Core, d: SpinNode): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const blockedPeers = core.blockedPeers(d.id);
  const shown = new Set<number>();
  for (const f of core.model.flowsOf(d)) {
    if (blockedPeers.has(f.to)) {
      shown.add(f.to);
      out.push({ to: f.to, dst_port: f.dstPort, icmp_type: f.icmpType, blocked: 1 });
    } else
      out.push({
        to: f.to,
        dst_port: f.dstPort,
        icmp_type: f.icmpType,
        packets: f.packets,
        bytes: f.bytes,
        lastseen: f.lastseen,
      });
  }
  for (const p of blockedPeers) if (!shown.has(p)) out.push({ to: p, dst_port: 0, icmp_type: 0, blocked: 1 });
  return out;
}

/** DOTS mitigation request → block the devices talking to the target (spind's dots.c, with its error code 1). */
async function dotsSignal(core: Core, signal: unknown): Promise<void> {
  if (!core.dotsEnabled) throw new RpcError('DOTS support is not enabled in spind.conf', 1);
  const scope = (signal as Record<string, { scope?: unknown }>)?.['ietf-dots-signal-channel:mitigation-scope']?.scope;
  if (!Array.isArray(scope)) throw new RpcError('Missing field ietf-dots-signal-channel:mitigation-scope', 1);
  const devices = new Set<SpinNode>();
  for (const s of scope as Record<string, unknown>[]) {
    const prefixes = s['target-prefix'];
    if (!Array.isArray(prefixes)) throw new RpcError('Missing field target-prefix', 1);
    const ps = prefixes.map((p) => {
      const x = typeof p === 'string' ? parsePrefix(p) : undefined;
      if (!x) throw new RpcError(`Bad target-prefix ${JSON.stringify(p)}`, 1);
      return x;
    });
    const ports = (s['target-port-range'] as { 'lower-port': number; 'upper-port'?: number }[] | undefined) ?? [];
    const icmps = (s['source-icmp-type-range'] as { 'lower-type': number; 'upper-type'?: number }[] | undefined) ?? [];
    for (const d of core.model.devices())
      for (const f of core.model.flowsOf(d)) {
        const peer = core.model.get(f.to);
        if (!peer || ![...peer.ips].some((ip) => ps.some((p) => prefixContains(p, ip)))) continue;
        if (
          ports.length &&
          !ports.some((r) => f.dstPort >= r['lower-port'] && f.dstPort <= (r['upper-port'] ?? r['lower-port']))
        )
          continue;
        if (
          icmps.length &&
          !icmps.some((r) => f.icmpType >= r['lower-type'] && f.icmpType <= (r['upper-type'] ?? r['lower-type']))
        )
          continue;
        devices.add(d);
      }
  }
  for (const d of devices) await core.blockNode(d.id);
}

/** add_/remove_iplist_node and add_/remove_iplist_ip. */
function listMethods(core: Core): RpcMethod[] {
  return (['add', 'remove'] as const).flatMap((op) => [
    method({
      name: `${op}_iplist_node`,
      args: { list: arg.string, node: arg.integer },
      optional: FORCE,
      hasResult: false,
      run: ({ list, node, force }) => {
        const how = { as: list, force: forced(force) };
        return op === 'add'
          ? core.addNodeToList(listOf(list), node, how)
          : core.removeNodeFromList(listOf(list), node, how);
      },
    }),
    method({
      name: `${op}_iplist_ip`,
      args: { list: arg.string, ip: arg.string },
      optional: FORCE,
      hasResult: false,
      run: ({ list, ip, force }) => {
        const how = { as: list, force: forced(force) };
        return op === 'add' ? core.addToList(listOf(list), ip, how) : core.removeFromList(listOf(list), ip, how);
      },
    }),
  ]);
}

export function spinMethods(core: Core, describe: () => unknown[]): RpcMethod[] {
  const none = {};
  return [
    method({ name: 'list_rpc_methods', args: none, hasResult: true, run: () => describe() }),
    method({
      name: 'list_devices',
      args: none,
      hasResult: true,
      run: () => core.listedDevices().map((n) => core.nodeJson(n)),
    }),
    method({
      name: 'get_device_data',
      args: { node: arg.integer },
      hasResult: true,
      run: ({ node }) => core.nodeJson(core.node(node)),
    }),
    method({
      name: 'list_device_flows',
      args: { device: arg.string },
      hasResult: true,
      run: ({ device }) => deviceFlows(core, core.device(device)),
    }),
    method({
      name: 'set_device_name',
      args: { node: arg.integer, name: arg.string },
      hasResult: false,
      run: ({ node, name }) => core.renameNode(node, name),
    }),
    method({
      name: 'node_add_ip',
      args: { node: arg.integer, ipaddr: arg.string },
      hasResult: false,
      run: ({ node, ipaddr }) => core.addNodeIp(node, ipaddr),
    }),
    method({
      name: 'set_flow_block',
      args: { node1: arg.integer, node2: arg.integer, block: arg.integer },
      hasResult: false,
      // spind: always success, even for unknown nodes or node1 == node2.
      run: ({ node1, node2, block }) => (block !== 0 ? core.blockFlow(node1, node2) : core.unblockFlow(node1, node2)),
    }),
    method({
      name: 'set_device_flow_block',
      args: { device: arg.string, node: arg.integer, block: arg.integer },
      hasResult: false,
      run: ({ device, node, block }) => {
        const d = core.device(device);
        return block !== 0 ? core.blockFlow(d.id, node) : core.unblockFlow(d.id, node);
      },
    }),
    method({
      name: 'get_flow_block',
      args: none,
      hasResult: true,
      run: () => core.blockedPairs().map(([node1, node2]) => ({ node1, node2 })),
    }),
    ...listMethods(core),
    method({
      name: 'list_iplist',
      args: { list: arg.string },
      hasResult: true,
      run: ({ list }) => core.listTexts(listOf(list)),
    }),
    method({ name: 'reset_iplist_ignore', args: none, hasResult: false, run: () => core.resetIgnoreList() }),
    method({
      name: 'dots_signal',
      args: { dots_signal: arg.complex },
      hasResult: false,
      run: ({ dots_signal }) => dotsSignal(core, dots_signal),
    }),
    method({
      name: 'get_devices',
      args: none,
      hasResult: true,
      emptyStringParams: true,
      // The seed's shape always has `name` (list_devices leaves it out when unknown): "" when nobody named the device.
      run: () =>
        core.listedDevices().map((n) => ({
          id: n.id,
          name: n.name ?? '',
          mac: n.mac,
          lastseen: n.lastseen,
          ips: sortIps(n.ips),
          domains: [...n.domains].sort(compareDomains),
        })),
    }),
    method({
      name: 'get_deviceflow',
      args: { device: arg.string },
      hasResult: true,
      run: ({ device }) =>
        deviceFlows(core, core.device(device)).map(({ to, packets, bytes, lastseen, dst_port, icmp_type, blocked }) => {
          const o: Record<string, unknown> = { to, packets: packets ?? 0, bytes: bytes ?? 0 };
          if (lastseen !== undefined) o.lastseen = lastseen;
          o.dst_port = dst_port;
          o.icmp_type = icmp_type;
          if (blocked) o.blocked = 1;
          return o;
        }),
    }),
  ];
}

export function spinRpc(core: Core): RpcDispatcher {
  const d: RpcDispatcher = new RpcDispatcher(
    spinMethods(core, () => d.describe()),
    { batch: (run) => core.inBatch(run) },
  );
  return d;
}
