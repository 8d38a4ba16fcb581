/**
 * spind's 16 JSON-RPC methods (docs/spin-protocol.md §1.3/§1.4) plus the design note's (docs/spin-protocol.md §1.5)
 * get_devices / get_deviceflow, acting on the core. Error texts and codes
 * are spind's.
 */
import type { Core } from '../core.js';
import { canonicalIp, compareDomains, compareIps, type Prefix, parsePrefix, prefixContains } from '../domain/ip.js';
import { type IpList, type ListName, matchListName, parseEntry } from '../domain/lists.js';
import type { SpinNode } from '../domain/model.js';
import { nameKey } from '../domain/names.js';
import { RpcDispatcher, RpcError, type RpcMethod } from './rpc.js';

/** Beyond spind: `force: 1` lets a block cut the router (protect.ts). */
const FORCE: Partial<RpcMethod> = { optional: [['force', 'integer']] };

/** Bounds on what RPC callers can make the app hold (each entry costs memory and firewall work). */
export const RPC_LIMITS = { listEntries: 10_000, rpcNodes: 500, nodeIps: 1024, blockedPairs: 10_000 } as const;

const UNKNOWN_LIST = "Unknown ip list name, should be 'ignore', 'block', or 'allow'";

function listOf(text: string): ListName {
  const l = matchListName(text);
  if (!l) throw new RpcError(UNKNOWN_LIST);
  return l;
}

function device(core: Core, mac: string): SpinNode {
  const d = core.model.ofMac(mac.toLowerCase());
  if (!d) throw new RpcError('Device not found');
  return d;
}

function deviceFlows(core: Core, d: SpinNode): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const blockedPeers = new Set<number>();
  for (const [a, b] of core.pairs.values()) if (a === d.id || b === d.id) blockedPeers.add(a === d.id ? b : a);
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

function listDevices(core: Core): SpinNode[] {
  return core.model
    .devices()
    .filter((n) => !core.isIgnored(n))
    .sort((a, b) => (a.mac! < b.mac! ? -1 : a.mac! > b.mac! ? 1 : 0));
}

/** Refuses a block that would cut the router (loopback, its own addresses, too wide) unless forced. */
async function refuseRouterCut(core: Core, prefixes: Prefix[], force: unknown): Promise<void> {
  if (force !== undefined && force !== 0) return;
  await core.router.refresh();
  for (const p of prefixes) {
    const why = core.router.reason(p);
    if (why) throw new RpcError(`Refused: ${why} (add "force": 1 to block it anyway)`, -3);
  }
}

async function setIplistNode(core: Core, listText: string, id: number, add: boolean, force?: unknown): Promise<void> {
  const list = listOf(listText);
  const n = core.model.get(id);
  if (!n) throw new RpcError('Unknown node id', -2);
  if (add && list === 'block')
    await refuseRouterCut(
      core,
      [...n.ips].map((ip) => parsePrefix(ip)!),
      force,
    );
  const l = core.lists[list];
  const entries = [...n.ips].map((ip) => parseEntry(ip, false)!);
  // Beyond spind: a node's names join the list too, so its addresses follow DNS (issue #36).
  if (list !== 'ignore') for (const d of n.domains) entries.push(parseEntry(d)!);
  if (add) checkRoom(l, entries.length);
  for (const e of entries) {
    if (add) l.add(e);
    else l.remove(e);
  }
  if (list === 'block') n.isBlocked = add;
  if (list === 'allow') n.isExcepted = add;
  if (add) n.persistent++;
  else n.persistent = Math.max(0, n.persistent - 1);
  core.model.touch(n);
  core.saveList(list);
  core.syncStore();
  await afterListChange(core, list, listText);
}

function checkRoom(l: IpList, more: number): void {
  if (l.size + more > RPC_LIMITS.listEntries)
    throw new RpcError(`The ${l.name} list is full (at most ${RPC_LIMITS.listEntries} entries)`);
}

/** Each blocked pair costs nft elements (every address of one times every address of the other). */
function checkPairRoom(core: Core): void {
  if (core.pairs.size >= RPC_LIMITS.blockedPairs)
    throw new RpcError(`Too many blocked flows (at most ${RPC_LIMITS.blockedPairs})`);
}

async function afterListChange(core: Core, list: ListName, as: string): Promise<void> {
  if (list !== 'ignore') {
    for (const key of core.lists[list].domainKeys()) core.seedNameAddresses(list, key);
    core.pruneNameAddresses(list);
    await core.enforce();
  }
  core.flushNodeInfo();
  core.broadcastList(list, as);
}

async function setIplistIp(core: Core, listText: string, text: string, add: boolean, force?: unknown): Promise<void> {
  const list = listOf(listText);
  const e = parseEntry(text);
  if (!e) throw new RpcError('Invalid IP address');
  if (add && list === 'block' && e.kind === 'ip') await refuseRouterCut(core, [e.prefix], force);
  const l = core.lists[list];
  if (add) checkRoom(l, 1);
  if (add) l.add(e);
  else l.remove(e);
  core.saveList(list);
  await afterListChange(core, list, listText);
}

/** DOTS mitigation request → block the devices talking to the target (spind's dots.c, with its error code 1). */
async function dotsSignal(core: Core, signal: unknown): Promise<void> {
  if (!core.opts.dots) throw new RpcError('DOTS support is not enabled in spind.conf', 1);
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
  for (const d of devices) await setIplistNode(core, 'block', d.id, true);
}

export function spinMethods(core: Core, describe: () => unknown[]): RpcMethod[] {
  const m = (
    name: string,
    args: RpcMethod['args'],
    hasResult: boolean,
    run: RpcMethod['run'],
    extra: Partial<RpcMethod> = {},
  ): RpcMethod => ({ name, args, hasResult, run, ...extra });
  const node = (id: unknown): SpinNode => {
    const n = core.model.get(id as number);
    if (!n) throw new RpcError('Unknown node id');
    return n;
  };
  return [
    m('list_rpc_methods', [], true, () => describe()),
    m('list_devices', [], true, () => listDevices(core).map((n) => core.nodeJson(n))),
    m('get_device_data', [['node', 'integer']], true, (p) => core.nodeJson(node(p.node))),
    m('list_device_flows', [['device', 'string']], true, (p) => deviceFlows(core, device(core, p.device as string))),
    m(
      'set_device_name',
      [
        ['node', 'integer'],
        ['name', 'string'],
      ],
      false,
      (p) => {
        const n = node(p.node);
        const name = (p.name as string).slice(0, 128);
        n.name = name;
        const keys = n.mac ? [n.mac] : [...n.ips].map((ip) => nameKey(ip)!).filter(Boolean);
        for (const k of keys) core.names.setUser(k, name);
        core.store.setName(keys, name);
        core.model.touch(n);
        core.flushNodeInfo();
      },
    ),
    m(
      'node_add_ip',
      [
        ['node', 'integer'],
        ['ipaddr', 'string'],
      ],
      false,
      (p) => {
        const ip = canonicalIp(p.ipaddr as string);
        if (!ip) throw new RpcError('Not a valid IP address');
        if (core.model.ofIp(ip)) throw new RpcError('IP address already assigned to a node');
        if (p.node === 0) {
          // Nodes made by callers are counted while they live: node=0 cannot grow the model without bound.
          for (const id of core.rpcNodes) if (!core.model.get(id)) core.rpcNodes.delete(id);
          if (core.rpcNodes.size >= RPC_LIMITS.rpcNodes)
            throw new RpcError(`Too many nodes added by RPC (at most ${RPC_LIMITS.rpcNodes})`);
          core.rpcNodes.add(core.model.learn({ ips: [ip] }).id);
        } else {
          const n = node(p.node);
          if (n.ips.size >= RPC_LIMITS.nodeIps) throw new RpcError(`Node has ${RPC_LIMITS.nodeIps} addresses already`);
          core.model.addIp(n, ip);
        }
        core.flushNodeInfo();
      },
    ),
    m(
      'set_flow_block',
      [
        ['node1', 'integer'],
        ['node2', 'integer'],
        ['block', 'integer'],
      ],
      false,
      async (p) => {
        // spind: always success, even for unknown nodes or node1 == node2.
        if (p.block !== 0) checkPairRoom(core);
        if (core.setPair(p.node1 as number, p.node2 as number, p.block !== 0)) await core.enforce();
      },
    ),
    m(
      'set_device_flow_block',
      [
        ['device', 'string'],
        ['node', 'integer'],
        ['block', 'integer'],
      ],
      false,
      async (p) => {
        const d = device(core, p.device as string);
        if (p.block !== 0) checkPairRoom(core);
        if (core.setPair(d.id, p.node as number, p.block !== 0)) await core.enforce();
      },
    ),
    m('get_flow_block', [], true, () =>
      [...core.pairs.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([node1, node2]) => ({ node1, node2 })),
    ),
    ...(['add', 'remove'] as const).flatMap((op) => [
      m(
        `${op}_iplist_node`,
        [
          ['list', 'string'],
          ['node', 'integer'],
        ],
        false,
        (p) => setIplistNode(core, p.list as string, p.node as number, op === 'add', p.force),
        FORCE,
      ),
      m(
        `${op}_iplist_ip`,
        [
          ['list', 'string'],
          ['ip', 'string'],
        ],
        false,
        (p) => setIplistIp(core, p.list as string, p.ip as string, op === 'add', p.force),
        FORCE,
      ),
    ]),
    m('list_iplist', [['list', 'string']], true, (p) => core.lists[listOf(p.list as string)].texts()),
    m('reset_iplist_ignore', [], false, async () => {
      await core.resetIgnore();
      core.broadcastList('ignore', 'ignore');
    }),
    m('dots_signal', [['dots_signal', 'complex']], false, (p) => dotsSignal(core, p.dots_signal)),
    m(
      'get_devices',
      [],
      true,
      () =>
        listDevices(core).map((n) => {
          // The seed's shape always has `name` (list_devices leaves it out when unknown): "" when nobody named the device.
          return {
            id: n.id,
            name: n.name ?? '',
            mac: n.mac,
            lastseen: n.lastseen,
            ips: [...n.ips].sort(compareIps),
            domains: [...n.domains].sort(compareDomains),
          };
        }),
      { emptyStringParams: true },
    ),
    m('get_deviceflow', [['device', 'string']], true, (p) =>
      deviceFlows(core, device(core, p.device as string)).map(
        ({ to, packets, bytes, lastseen, dst_port, icmp_type, blocked }) => {
          const o: Record<string, unknown> = { to, packets: packets ?? 0, bytes: bytes ?? 0 };
          if (lastseen !== undefined) o.lastseen = lastseen;
          o.dst_port = dst_port;
          o.icmp_type = icmp_type;
          if (blocked) o.blocked = 1;
          return o;
        },
      ),
    ),
  ];
}

export function spinRpc(core: Core): RpcDispatcher {
  const d: RpcDispatcher = new RpcDispatcher(
    spinMethods(core, () => d.describe()),
    { batch: (run) => core.inBatch(run) },
  );
  return d;
}
