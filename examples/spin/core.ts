/**
 * The SPIN core: the node model fed from conntrack, DNS and neighbour
 * records, the per-second `traffic` aggregation, the lists and blocks with
 * their enforcement and persistence, and every message in SPIN's format on
 * `messages$`. The RPC methods (methods.ts) act on it.
 */
import { Subject } from 'rxjs';
import type { ConntrackRecord, DnsRecord, NeighRecord } from '../../src/index.js';
import { deleteConntrack } from '../../src/index.js';
import type { SpinCore, SpinMessage } from './contract.js';
import { type Drop, type Enforcement, Firewall } from './firewall.js';
import { canonicalIp, domainKey } from './ip.js';
import { IpList, type ListName, parseEntry } from './lists.js';
import {
  blockedMessage,
  clearNodeMessage,
  dnsQueryMessage,
  listMessage,
  nodeDeletedMessage,
  nodeInfoMessage,
  nodeMergedMessage,
  serverRestartMessage,
  type TrafficFlow,
  trafficMessage,
} from './messages.js';
import { NodeModel, type SpinNode } from './model.js';
import { DeviceNames } from './names.js';
import { DEFAULT_PERIODS, type SpinPeriods } from './periods.js';
import type { SpinStore } from './store.js';

export interface CoreOptions {
  store: SpinStore;
  netns?: string;
  periods?: Partial<SpinPeriods>;
  /** Addresses the ignore list starts with on first run and after reset_iplist_ignore (the router's own). */
  ownAddresses: () => Promise<string[]>;
  namesFile?: string;
  leaseFile?: string;
  /** Publish traffic between two non-devices too (spind -l). */
  local?: boolean;
  /** nft table name (default `spin` → `flowgrab_spin`). */
  tableName?: string;
  /** Accept dots_signal (spind: dots_enabled). */
  dots?: boolean;
  /** Where notices go (the CLI logs them); never the console from here. */
  log?: (line: string) => void;
  now?: () => number;
}

/** One second's traffic of a (from, to, protocol, ports) flow; the nodes as they were when counted. */
interface Agg {
  from: SpinNode;
  to: SpinNode;
  proto: number;
  sport: number;
  dport: number;
  size: number;
  count: number;
}

export class Core implements SpinCore {
  readonly periods: SpinPeriods;
  readonly model: NodeModel;
  readonly lists: Record<ListName, IpList> = {
    block: new IpList('block'),
    ignore: new IpList('ignore'),
    allow: new IpList('allow'),
  };
  /** Blocked node pairs, key `a-b` with a < b. */
  readonly pairs = new Map<string, [number, number]>();
  readonly names: DeviceNames;
  readonly firewall: Firewall;
  readonly store: SpinStore;
  readonly opts: CoreOptions;
  private readonly out = new Subject<SpinMessage>();
  readonly messages$ = this.out.asObservable();
  readonly handleRpc: SpinCore['handleRpc'];
  private readonly pending = new Set<SpinNode>();
  private readonly dirty = new Set<SpinNode>();
  private readonly deletedIds = new Set<number>();
  private traffic = new Map<string, Agg>();
  /** name key → address → expiry (ms): what DNS answers said, for blocks by name. */
  private readonly answers = new Map<string, Map<string, number>>();
  readonly nameAddrs = { block: new Map<string, number>(), allow: new Map<string, number>() };
  /** MAC → addresses the neighbour table has for it now. */
  private readonly neighbours = new Map<string, Set<string>>();
  private timers: NodeJS.Timeout[] = [];
  private fwTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly counters = { conntrack: 0, dns: 0, neigh: 0, trafficMessages: 0, blocked: 0, firewallErrors: 0 };

  constructor(opts: CoreOptions, rpc: (core: Core) => SpinCore['handleRpc']) {
    this.opts = opts;
    this.store = opts.store;
    this.periods = { ...DEFAULT_PERIODS, ...opts.periods };
    this.names = new DeviceNames(opts.store.names(), { namesFile: opts.namesFile, leaseFile: opts.leaseFile });
    this.model = new NodeModel({
      now: opts.now,
      nameFor: (mac, ips) => this.names.lookup(mac, ips),
      events: {
        modified: (n) => {
          this.pending.add(n);
          this.dirty.add(n);
          if (n.persistent > 0) this.scheduleFirewall();
        },
        merged: (id, into) => this.onMerged(id, into),
        deleted: (n) => this.onDeleted(n),
      },
    });
    this.firewall = new Firewall(() => this.enforcement(), { netns: opts.netns, name: opts.tableName });
    this.handleRpc = rpc(this);
  }

  /** Restores the previous run, enforces its lists and blocks at once, starts the timers. */
  async start(): Promise<void> {
    for (const s of this.store.nodes())
      this.model.restore(s.id, { ...s, ips: s.ips, domains: s.domains, lastseen: s.lastseen });
    this.model.reserveIds(this.store.lastId());
    const stored = this.store.lists();
    for (const { list, entry } of stored) {
      const e = parseEntry(entry);
      if (e && this.lists[list]) this.lists[list].add(e);
    }
    if (!stored.some((r) => r.list === 'ignore') && this.store.lastId() === 0) await this.resetIgnore();
    for (const [a, b] of this.store.pairs()) {
      const na = this.model.get(a);
      const nb = this.model.get(b);
      if (!na || !nb) continue;
      this.pairs.set(`${a}-${b}`, [a, b]);
      na.persistent++;
      nb.persistent++;
    }
    const now = this.model.now();
    for (const list of ['block', 'allow'] as const)
      for (const [name, ip, exp] of this.store.nameAddrs(list, now)) {
        this.remember(name, ip, exp);
        this.nameAddrs[list].set(ip, Math.max(exp, this.nameAddrs[list].get(ip) ?? 0));
      }
    this.pending.clear();
    await this.firewall.apply();
    const p = this.periods;
    const every = (ms: number, fn: () => unknown) => {
      const t = setInterval(() => {
        try {
          const r = fn();
          if (r instanceof Promise) r.catch((err) => this.log(`timer: ${(err as Error).message}`));
        } catch (err) {
          this.log(`timer: ${(err as Error).message}`);
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(p.trafficMs, () => this.tick());
    every(p.flowStatsMs, () => this.ageFlows());
    every(p.nodeExpiryMs, () => this.expireNodes());
    every(p.storeSyncMs, () => this.syncStore());
  }

  startupMessages(): SpinMessage[] {
    const msgs = [serverRestartMessage()];
    for (const l of ['block', 'ignore', 'allow'] as const) msgs.push(listMessage(l, this.lists[l].texts()));
    for (const n of this.model.nodes()) if (!this.isIgnored(n)) msgs.push(nodeInfoMessage(this.nodeJson(n)));
    return msgs;
  }

  nodeJson(n: SpinNode): { id: number } & Record<string, unknown> {
    return this.model.toJson(n) as { id: number } & Record<string, unknown>;
  }

  isIgnored(n: SpinNode): boolean {
    const ig = this.lists.ignore;
    if (ig.size === 0) return false;
    for (const ip of n.ips) if (ig.containsIp(ip)) return true;
    return false;
  }

  // ---- ingest ----

  onConntrack(r: ConntrackRecord): void {
    this.counters.conntrack++;
    const d = r.delta;
    if (!d) return;
    const packets = d.orig.packets + d.reply.packets;
    const bytes = d.orig.bytes + d.reply.bytes;
    if (packets === 0 && bytes === 0) return;
    const src = r.orig.src;
    const dst = r.orig.dst;
    const ig = this.lists.ignore;
    if (ig.containsIp(src) || ig.containsIp(dst)) return;
    const s = this.model.nodeOfIp(src, true);
    const t = this.model.nodeOfIp(dst, true);
    const dport = r.orig.dport ?? 0;
    const icmp = r.orig.icmp?.type ?? 0;
    if (s.mac) this.model.countFlow(s, t, dport, icmp, packets, bytes);
    if (t.mac) this.model.countFlow(t, s, dport, icmp, packets, bytes);
    if (!s.mac && !t.mac && !this.opts.local) return;
    const sport = r.orig.sport ?? 0;
    // Keyed by node ids, not addresses: a short key, and no record's strings kept for the second.
    const key = `${s.id}|${t.id}|${r.protonum}|${sport}|${dport}`;
    const a = this.traffic.get(key);
    if (a) {
      a.size += bytes;
      a.count += packets;
    } else this.traffic.set(key, { from: s, to: t, proto: r.protonum, sport, dport, size: bytes, count: packets });
  }

  onDns(r: DnsRecord): void {
    this.counters.dns++;
    if (r.error || !r.qname) return;
    const ig = this.lists.ignore;
    if (r.kind === 'response') {
      const expiryBase = this.model.now();
      for (const res of r.resolved) {
        const ip = canonicalIp(res.ip);
        if (!ip) continue;
        const exp = expiryBase + (Math.max(0, res.ttl) + this.periods.dnsGraceS) * 1000;
        for (const name of [res.name, ...res.via]) this.remember(name, ip, exp);
        this.followNames([res.name, ...res.via], ip, exp);
        if (ig.containsIp(ip)) continue;
        this.model.learn({ ips: [ip], domains: [withDot(res.name)] });
      }
      this.flushNodeInfo();
      return;
    }
    const client = canonicalIp(r.client);
    if (!client || ig.containsIp(client)) return;
    const from = this.model.nodeOfIp(client, false);
    const q = this.model.learn({ domains: [withDot(r.qname)] });
    this.flushNodeInfo();
    this.out.next(dnsQueryMessage(from.id, q.id, withDot(r.qname)));
  }

  onNeigh(r: NeighRecord): void {
    this.counters.neigh++;
    const ip = canonicalIp(r.ip);
    if (!ip) return;
    if (r.type === 'delete' || !r.usable || !r.mac) {
      for (const [mac, ips] of this.neighbours) {
        if (ips.delete(ip) && ips.size === 0) this.neighbours.delete(mac);
      }
      return;
    }
    if (this.lists.ignore.containsIp(ip)) return;
    let ips = this.neighbours.get(r.mac);
    if (!ips) this.neighbours.set(r.mac, (ips = new Set()));
    ips.add(ip);
    this.model.learn({ mac: r.mac, ips: [ip] });
    this.flushNodeInfo();
  }

  /** True when the neighbour table lists the MAC now. */
  liveMac(mac: string): boolean {
    return (this.neighbours.get(mac)?.size ?? 0) > 0;
  }

  // ---- periodic work ----

  /** Publishes the second's traffic (nodeInfo first) and the blocked packets. */
  async tick(): Promise<void> {
    this.publishTraffic();
    if (this.hasBlocks()) await this.publishBlocked();
    else this.flushNodeInfo();
  }

  publishTraffic(): void {
    if (this.traffic.size === 0) return;
    const aggs = this.traffic;
    this.traffic = new Map();
    const flows: TrafficFlow[] = [];
    for (const a of aggs.values()) {
      const from = this.current(a.from);
      const to = this.current(a.to);
      if (!from || !to) continue;
      flows.push({
        from: from.id,
        to: to.id,
        protocol: a.proto,
        from_port: a.sport,
        to_port: a.dport,
        size: a.size,
        count: a.count,
      });
    }
    if (flows.length === 0) return;
    this.flushNodeInfo();
    this.counters.trafficMessages++;
    this.out.next(trafficMessage(flows, Math.floor(this.model.now() / 1000)));
  }

  /** The live node a counted node is now: itself, or the survivor it merged into (which took its addresses). */
  private current(n: SpinNode): SpinNode | undefined {
    if (this.model.get(n.id) === n) return n;
    for (const ip of n.ips) return this.model.ofIp(ip);
    return undefined;
  }

  private async publishBlocked(): Promise<void> {
    const drops = await this.firewall.drops();
    const msgs: SpinMessage[] = [];
    const ig = this.lists.ignore;
    for (const d of drops) {
      if (ig.containsIp(d.src) || ig.containsIp(d.dst)) continue;
      const from = this.model.nodeOfIp(d.src, false);
      const to = this.model.nodeOfIp(d.dst, false);
      msgs.push(blockedMessage(blockedFlow(d, from.id, to.id)));
    }
    this.flushNodeInfo();
    this.counters.blocked += msgs.length;
    for (const m of msgs) this.out.next(m);
  }

  ageFlows(): number {
    const p = this.periods;
    const held = this.pairs.size > 0 ? (d: SpinNode, to: number) => this.pairs.has(pairKey(d.id, to)) : undefined;
    const n = this.model.ageFlows(p.flowIdleMs, p.keepFlows, p.flowMaxIdleMs, held);
    const now = this.model.now();
    for (const [k, m] of this.answers) {
      for (const [ip, exp] of m) if (exp <= now) m.delete(ip);
      if (m.size === 0) this.answers.delete(k);
    }
    for (const m of Object.values(this.nameAddrs)) for (const [ip, exp] of m) if (exp <= now) m.delete(ip);
    return n;
  }

  expireNodes(): SpinNode[] {
    const p = this.periods;
    return this.model.expire(p.nodeRetainMs, p.deviceRetainMs, (mac) => this.liveMac(mac));
  }

  /** Writes changed node identities (and the id counter) to the store. */
  syncStore(): void {
    if (this.dirty.size === 0 && this.deletedIds.size === 0) return;
    const put = [...this.dirty]
      .filter((n) => this.model.get(n.id) === n)
      .map((n) => ({
        id: n.id,
        mac: n.mac,
        name: n.name,
        ips: [...n.ips],
        domains: [...n.domains],
        lastseen: n.lastseen,
        isBlocked: n.isBlocked,
        isExcepted: n.isExcepted,
      }));
    this.store.syncNodes(put, [...this.deletedIds], this.model.lastId);
    this.dirty.clear();
    this.deletedIds.clear();
  }

  // ---- lists, blocks, enforcement ----

  hasBlocks(): boolean {
    return this.lists.block.size > 0 || this.pairs.size > 0;
  }

  enforcement(): Enforcement {
    const pairs: [string, string][] = [];
    for (const [a, b] of this.pairs.values()) {
      const na = this.model.get(a);
      const nb = this.model.get(b);
      if (!na || !nb) continue;
      for (const x of na.ips) for (const y of nb.ips) pairs.push([x, y]);
    }
    return {
      block: this.lists.block.ipEntries(),
      allow: this.lists.allow.ipEntries(),
      pairs,
      blockNames: this.nameAddrs.block,
      allowNames: this.nameAddrs.allow,
    };
  }

  /** Is traffic between these addresses blocked now (for cutting existing connections)? */
  blockedBetween(a: string, b: string): boolean {
    const { allow, block } = this.lists;
    if (allow.containsIp(a) || allow.containsIp(b) || this.nameAddrs.allow.has(a) || this.nameAddrs.allow.has(b))
      return false;
    if (block.containsIp(a) || block.containsIp(b) || this.nameAddrs.block.has(a) || this.nameAddrs.block.has(b))
      return true;
    const na = this.model.ofIp(a);
    const nb = this.model.ofIp(b);
    return !!na && !!nb && this.pairs.has(pairKey(na.id, nb.id));
  }

  /** Applies the current lists and blocks to the kernel, then cuts connections they now block. */
  async enforce(): Promise<void> {
    await this.firewall.apply();
    await this.cutBlocked();
  }

  async cutBlocked(): Promise<void> {
    if (!this.hasBlocks()) return;
    try {
      await deleteConntrack((r) => this.blockedBetween(r.orig.src, r.orig.dst), { netns: this.opts.netns });
    } catch (err) {
      this.log(`conntrack delete: ${(err as Error).message}`);
    }
  }

  /** Coalesces firewall updates caused by nodes of blocked pairs gaining addresses. */
  scheduleFirewall(): void {
    if (this.fwTimer || this.closed) return;
    this.fwTimer = setTimeout(() => {
      this.fwTimer = undefined;
      this.enforce().catch((err) => this.firewallError(err));
    }, 20);
    this.fwTimer.unref();
  }

  firewallError(err: unknown): void {
    this.counters.firewallErrors++;
    this.log(`firewall: ${(err as Error).message}`);
  }

  saveList(list: ListName): void {
    this.store.saveList(
      list,
      this.lists[list].all().map((e) => e.text),
    );
  }

  /** Broadcasts a list under the name the caller used (spind's behaviour). */
  broadcastList(list: ListName, as: string): void {
    this.out.next(listMessage(as, this.lists[list].texts()));
  }

  /** A listed name's known addresses join its set at once; later answers add more (followNames). */
  seedNameAddresses(list: 'block' | 'allow', name: string): void {
    const m = this.answers.get(domainKey(name));
    if (!m) return;
    for (const [ip, exp] of m) if (exp > this.model.now()) this.nameAddrs[list].set(ip, exp);
  }

  /** Drops the name addresses that no listed name covers any more. */
  pruneNameAddresses(list: 'block' | 'allow'): void {
    const keep = new Map<string, number>();
    const rows: [string, string, number][] = [];
    const now = this.model.now();
    for (const [name, m] of this.answers) {
      if (!this.lists[list].containsDomain(name)) continue;
      for (const [ip, exp] of m) {
        if (exp <= now) continue;
        keep.set(ip, Math.max(exp, keep.get(ip) ?? 0));
        rows.push([name, ip, exp]);
      }
    }
    const cur = this.nameAddrs[list];
    for (const ip of [...cur.keys()]) if (!keep.has(ip)) cur.delete(ip);
    this.store.saveNameAddrs(list, rows);
  }

  setPair(a: number, b: number, block: boolean): boolean {
    if (a === b) return false;
    const na = this.model.get(a);
    const nb = this.model.get(b);
    if (!na || !nb) return false;
    const key = pairKey(a, b);
    if (block === this.pairs.has(key)) return false;
    if (block) {
      this.pairs.set(key, a < b ? [a, b] : [b, a]);
      na.persistent++;
      nb.persistent++;
    } else {
      this.pairs.delete(key);
      na.persistent--;
      nb.persistent--;
    }
    this.dirty.add(na);
    this.dirty.add(nb);
    this.syncStore();
    this.store.savePairs([...this.pairs.values()]);
    return true;
  }

  async resetIgnore(): Promise<void> {
    const own = await this.opts.ownAddresses();
    this.lists.ignore.clear();
    for (const a of own) {
      const e = parseEntry(a, false);
      if (e) this.lists.ignore.add(e);
    }
    this.saveList('ignore');
  }

  /** Publishes nodeInfo of every node changed since the last call (before any message that refers to them). */
  flushNodeInfo(): void {
    if (this.pending.size === 0) return;
    const nodes = [...this.pending];
    this.pending.clear();
    for (const n of nodes) {
      if (this.model.get(n.id) !== n || this.isIgnored(n)) continue;
      this.out.next(nodeInfoMessage(this.nodeJson(n)));
    }
  }

  publish(m: SpinMessage): void {
    this.out.next(m);
  }

  log(line: string): void {
    this.opts.log?.(line);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.fwTimer) clearTimeout(this.fwTimer);
    try {
      this.syncStore();
    } catch (err) {
      this.log(`store: ${(err as Error).message}`);
    }
    await this.firewall.close();
    this.out.complete();
  }

  private remember(name: string, ip: string, exp: number): void {
    const k = domainKey(name);
    let m = this.answers.get(k);
    if (!m) {
      if (this.answers.size >= 100_000) return;
      this.answers.set(k, (m = new Map()));
    }
    m.set(ip, Math.max(exp, m.get(ip) ?? 0));
  }

  /** An answer for a listed name: its address joins the name set until the TTL runs out. */
  private followNames(names: string[], ip: string, exp: number): void {
    for (const list of ['block', 'allow'] as const) {
      if (this.lists[list].size === 0) continue;
      const name = names.find((n) => this.lists[list].containsDomain(n));
      if (name === undefined) continue;
      const cur = this.nameAddrs[list].get(ip) ?? 0;
      this.nameAddrs[list].set(ip, Math.max(cur, exp));
      if (exp <= cur + 1000) continue;
      this.store.putNameAddr(list, domainKey(name), ip, exp);
      this.firewall.nameAddress(list, ip, exp).then(
        () => (list === 'block' ? this.cutBlocked() : undefined),
        (err) => this.firewallError(err),
      );
    }
  }

  private onMerged(id: number, into: SpinNode): void {
    this.flushNodeInfo();
    this.out.next(nodeMergedMessage(id, into.id));
    this.out.next(clearNodeMessage(id));
    this.deletedIds.add(id);
    this.dirty.add(into);
    // Blocked pairs follow the survivor.
    let changed = false;
    for (const [k, [a, b]] of [...this.pairs]) {
      if (a !== id && b !== id) continue;
      this.pairs.delete(k);
      changed = true;
      const x = a === id ? into.id : a;
      const y = b === id ? into.id : b;
      if (x === y) {
        into.persistent -= 2;
        continue;
      }
      const nk = pairKey(x, y);
      if (this.pairs.has(nk)) {
        into.persistent--;
        this.model.get(x === into.id ? y : x)!.persistent--;
        continue;
      }
      this.pairs.set(nk, x < y ? [x, y] : [y, x]);
    }
    if (changed) {
      this.syncStore();
      this.store.savePairs([...this.pairs.values()]);
      this.scheduleFirewall();
    }
  }

  private onDeleted(n: SpinNode): void {
    this.pending.delete(n);
    this.dirty.delete(n);
    this.flushNodeInfo();
    this.out.next(nodeDeletedMessage(n.id));
    this.out.next(clearNodeMessage(n.id));
    this.deletedIds.add(n.id);
  }
}

/**
 * A `blocked` message's flow (spin-protocol.md §2.4): a packet other than TCP
 * or UDP is reported with protocol 0 and ports 0. spind only says so for IPv4
 * because it lets IPv6 non-TCP/UDP packets of blocked nodes through (a fault
 * we do not reproduce, §7): we drop those too and report them the same way.
 */
export function blockedFlow(d: Drop, from: number, to: number): TrafficFlow {
  const ports = d.proto === 6 || d.proto === 17;
  return {
    from,
    to,
    protocol: ports ? d.proto : 0,
    from_port: ports ? d.sport : 0,
    to_port: ports ? d.dport : 0,
    size: d.bytes,
    count: d.packets,
  };
}

export const pairKey = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);
const withDot = (name: string) => (name.endsWith('.') ? name : `${name}.`);
