/**
 * The SPIN core: the node model fed from conntrack, DNS and neighbour
 * records, the per-second `traffic` aggregation (traffic.ts), the lists and
 * blocks (blocks.ts) with their enforcement and persistence, and every message
 * in SPIN's format on `messages$`. The RPC methods (methods.ts) act on it.
 */
import { type ConntrackRecord, type DnsRecord, deleteConntrack, type NeighRecord } from 'flowgrab';
import { Announcer } from './domain/announce.js';
import { Blocks } from './domain/blocks.js';
import { inScope, onConntrack, onDns, onNeigh } from './domain/ingest.js';
import { domainKey } from './domain/ip.js';
import { IpList, type ListName, parseEntry } from './domain/lists.js';
import {
  clearNodeMessage,
  listMessage,
  nodeDeletedMessage,
  nodeInfoMessage,
  nodeMergedMessage,
  serverRestartMessage,
  trafficMessage,
} from './domain/messages.js';
import { NodeModel, type SpinNode } from './domain/model.js';
import { DeviceNames, parseLeases, parseNamesFile } from './domain/names.js';
import { Neighbours } from './domain/neighbours.js';
import { PeakTable, peakCommand } from './domain/peaks.js';
import { DEFAULT_PERIODS, type SpinPeriods } from './domain/periods.js';
import { RouterGuard } from './domain/protect.js';
import { blockedMessages, TrafficTable } from './domain/traffic.js';
import { deferredInBatch, runBatch } from './io/batch.js';
import type { SpinCore, SpinMessage } from './io/contract.js';
import { type Enforcement, Firewall } from './io/firewall.js';
import { type SpinStore, storedNode } from './io/store.js';
import { every } from './io/timers.js';
import { WatchedFile } from './io/watched-file.js';
import type { CoreOptions } from './options.js';

export { pairKey } from './domain/blocks.js';
export { blockedFlow } from './domain/traffic.js';
export type { CoreOptions } from './options.js';

export class Core implements SpinCore {
  readonly periods: SpinPeriods;
  readonly model: NodeModel;
  readonly lists: Record<ListName, IpList> = {
    block: new IpList('block'),
    ignore: new IpList('ignore'),
    allow: new IpList('allow'),
  };
  /** Blocked node pairs, key `a-b` with a < b (the Blocks' own). */
  readonly pairs: Map<string, [number, number]>;
  readonly names: DeviceNames;
  readonly firewall: Firewall;
  readonly store: SpinStore;
  readonly opts: CoreOptions;
  /** Loopback and the router's own addresses, which blocks must not cut (protect.ts). */
  readonly router: RouterGuard;
  /** Per-node traffic per minute for get_peak_info (peaks.ts). */
  readonly peaks = new PeakTable();
  /** Live nodes made by `node_add_ip node=0` (bounded by methods.ts). */
  readonly rpcNodes = new Set<number>();
  /** @internal (ingest.ts) */
  readonly announcer: Announcer;
  readonly messages$: SpinCore['messages$'];
  readonly handleRpc: SpinCore['handleRpc'];
  private readonly dirty = new Set<SpinNode>();
  private readonly deletedIds = new Set<number>();
  /** @internal (ingest.ts) */
  readonly traffic = new TrafficTable();
  /** @internal (ingest.ts) */
  readonly blocks: Blocks;
  /** Addresses of blocked / allowed names → expiry (ms) (the Blocks' own). */
  readonly nameAddrs: Blocks['nameAddrs'];
  /** @internal (ingest.ts) */
  readonly neighbours = new Neighbours();
  private timers: NodeJS.Timeout[] = [];
  private fwTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly counters = { conntrack: 0, dns: 0, neigh: 0, trafficMessages: 0, blocked: 0, firewallErrors: 0 };

  constructor(opts: CoreOptions, rpc: (core: Core) => SpinCore['handleRpc']) {
    this.opts = opts;
    this.store = opts.store;
    this.periods = { ...DEFAULT_PERIODS, ...opts.periods };
    this.announcer = new Announcer({
      live: (n) => this.model.get(n.id) === n,
      isIgnored: (n) => this.isIgnored(n),
      json: (n) => this.nodeJson(n),
      learnMac: (mac, ip) => {
        if (this.lists.ignore.containsIp(ip) || !inScope(this, ip)) return;
        this.neighbours.add(mac, ip);
        this.model.learn({ mac, ips: [ip] });
      },
      lookupMac: opts.lookupMac,
    });
    this.messages$ = this.announcer.messages$;
    const namesFile = new WatchedFile(opts.namesFile, parseNamesFile);
    const leases = new WatchedFile(opts.leaseFile, parseLeases);
    this.names = new DeviceNames(opts.store.names(), [() => namesFile.get(), () => leases.get()]);
    this.model = new NodeModel({
      now: opts.now,
      nameFor: (mac, ips) => this.names.lookup(mac, ips),
      events: {
        modified: (n) => {
          this.announcer.pending.add(n);
          this.dirty.add(n);
          if (n.persistent > 0) this.scheduleFirewall();
        },
        merged: (id, into) => this.onMerged(id, into),
        deleted: (n) => this.onDeleted(n),
      },
    });
    this.router = new RouterGuard(opts.routerAddresses ?? opts.ownAddresses, (l) => this.log(l));
    this.blocks = new Blocks(this.model, this.lists, (ip, name) => this.router.spareForName(ip, name));
    this.pairs = this.blocks.pairs;
    this.nameAddrs = this.blocks.nameAddrs;
    this.firewall = new Firewall(() => this.enforcement(), { netns: opts.netns, name: opts.tableName });
    this.handleRpc = rpc(this);
  }

  /** Restores the previous run, enforces its lists and blocks at once, starts the timers. */
  async start(): Promise<void> {
    await this.router.refresh(true).catch((err) => this.log(`router addresses: ${(err as Error).message}`));
    for (const s of this.store.nodes()) this.model.restore(s.id, s);
    this.model.reserveIds(this.store.lastId());
    const stored = this.store.lists();
    for (const { list, entry } of stored) {
      const e = parseEntry(entry);
      if (e && this.lists[list]) this.lists[list].add(e);
    }
    if (!stored.some((r) => r.list === 'ignore') && this.store.lastId() === 0) await this.resetIgnore();
    this.blocks.restore(this.store);
    this.announcer.pending.clear();
    await this.firewall.apply();
    const p = this.periods;
    const log = (line: string) => this.log(line);
    this.timers.push(
      every(p.trafficMs, () => this.tick(), log),
      every(p.flowStatsMs, () => this.ageFlows(), log),
      every(p.nodeExpiryMs, () => this.expireNodes(), log),
      every(p.storeSyncMs, () => this.syncStore(), log),
    );
  }

  handleCommand(payload: Buffer): SpinMessage | undefined {
    return peakCommand(payload, this.peaks);
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
    return this.lists.ignore.containsAnyIp(n.ips);
  }

  // ---- ingest (ingest.ts) ----

  onConntrack(r: ConntrackRecord): void {
    onConntrack(this, r);
  }

  onDns(r: DnsRecord): void {
    onDns(this, r);
  }

  onNeigh(r: NeighRecord): void {
    onNeigh(this, r);
  }

  /** True when the neighbour table lists the MAC now. */
  liveMac(mac: string): boolean {
    return this.neighbours.live(mac);
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
    const flows = this.traffic.drain(this.model);
    if (flows.length === 0) return;
    this.flushNodeInfo();
    this.counters.trafficMessages++;
    this.peaks.add(flows);
    this.announcer.emit(trafficMessage(flows, Math.floor(this.model.now() / 1000)));
  }

  private async publishBlocked(): Promise<void> {
    const drops = await this.firewall.drops();
    const msgs = blockedMessages(drops, this.lists.ignore, this.model);
    this.flushNodeInfo();
    this.counters.blocked += msgs.length;
    for (const m of msgs) this.announcer.emit(m);
  }

  ageFlows(): number {
    const p = this.periods;
    const n = this.model.ageFlows(p.flowIdleMs, p.keepFlows, p.flowMaxIdleMs, this.blocks.held());
    this.blocks.expire(this.model.now());
    this.peaks.expire();
    return n;
  }

  expireNodes(): SpinNode[] {
    const p = this.periods;
    return this.model.expire(p.nodeRetainMs, p.deviceRetainMs, (mac) => this.liveMac(mac));
  }

  /** Writes changed node identities (and the id counter) to the store. */
  syncStore(): void {
    if (this.dirty.size === 0 && this.deletedIds.size === 0) return;
    const put = [...this.dirty].filter((n) => this.model.get(n.id) === n).map(storedNode);
    this.store.syncNodes(put, [...this.deletedIds], this.model.lastId);
    this.dirty.clear();
    this.deletedIds.clear();
  }

  // ---- lists, blocks, enforcement ----

  hasBlocks(): boolean {
    return this.blocks.hasBlocks();
  }

  enforcement(): Enforcement {
    return this.blocks.enforcement();
  }

  /** Is traffic between these addresses blocked now (for cutting existing connections)? */
  blockedBetween(a: string, b: string): boolean {
    return this.blocks.blockedBetween(a, b);
  }

  /**
   * Runs a JSON-RPC batch: every change it makes reaches the kernel in one
   * nft transaction at its end (not one rebuild per call).
   */
  inBatch<T>(run: () => Promise<T>): Promise<T> {
    return runBatch(run, () => this.enforce().catch((err) => this.firewallError(err)));
  }

  /** Applies the current lists and blocks to the kernel, then cuts connections they now block. */
  async enforce(): Promise<void> {
    if (deferredInBatch()) return;
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
    this.announcer.emit(listMessage(as, this.lists[list].texts()));
  }

  /** A listed name's known addresses join its set at once; later answers add more (followNames). */
  seedNameAddresses(list: 'block' | 'allow', name: string): void {
    this.blocks.seed(list, name);
  }

  /** Drops the name addresses that no listed name covers any more. */
  pruneNameAddresses(list: 'block' | 'allow'): void {
    this.store.saveNameAddrs(list, this.blocks.prune(list));
  }

  setPair(a: number, b: number, block: boolean): boolean {
    const changed = this.blocks.setPair(a, b, block);
    if (!changed) return false;
    const [na, nb] = changed;
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
    this.announcer.flush();
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
    this.announcer.complete();
  }

  /** An answer for a listed name: its address joins the name set until the TTL runs out (persisted, enforced). */
  /** @internal (ingest.ts) */
  followNames(names: string[], ip: string, exp: number): void {
    for (const list of ['block', 'allow'] as const) {
      const name = this.blocks.follow(list, names, ip, exp);
      if (name === undefined) continue;
      this.store.putNameAddr(list, domainKey(name), ip, exp);
      this.firewall.nameAddress(list, ip, exp).then(
        () => (list === 'block' ? this.cutBlocked() : undefined),
        (err) => this.firewallError(err),
      );
    }
  }

  private onMerged(id: number, into: SpinNode): void {
    this.flushNodeInfo();
    this.announcer.emit(nodeMergedMessage(id, into.id));
    this.announcer.emit(clearNodeMessage(id));
    this.deletedIds.add(id);
    this.dirty.add(into);
    if (this.blocks.mergePairs(id, into)) {
      this.syncStore();
      this.store.savePairs([...this.pairs.values()]);
      this.scheduleFirewall();
    }
  }

  private onDeleted(n: SpinNode): void {
    this.announcer.pending.delete(n);
    this.dirty.delete(n);
    this.flushNodeInfo();
    this.announcer.emit(nodeDeletedMessage(n.id));
    this.announcer.emit(clearNodeMessage(n.id));
    this.deletedIds.add(n.id);
  }
}
