/**
 * The SPIN core: the node model fed from conntrack, DNS and neighbour
 * records, the per-second `traffic` aggregation (domain/traffic.ts), the
 * lists and blocks (domain/blocks.ts) with their enforcement (enforcer.ts)
 * and persistence, and every message in SPIN's format on `messages$`.
 *
 * Its state is its own: callers (the RPC methods of io/methods.ts) read it
 * through queries and change it through commands (`renameNode`,
 * `addNodeToList`, `blockFlow`, …), each of which updates the model,
 * persists, enforces and announces in one place.
 */
import type { ConntrackRecord, DnsRecord, NeighRecord } from 'flowgrab';
import { Announcer } from './domain/announce.js';
import { Blocks } from './domain/blocks.js';
import { SpinError } from './domain/errors.js';
import { inScope, onConntrack, onDns, onNeigh } from './domain/ingest.js';
import type { IngestHost } from './domain/ingest-host.js';
import { canonicalIp, domainKey, type Prefix, parsePrefix } from './domain/ip.js';
import { IpList, type ListEntry, type ListName, parseEntry } from './domain/lists.js';
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
import { DeviceNames, nameKey, parseLeases, parseNamesFile } from './domain/names.js';
import { Neighbours } from './domain/neighbours.js';
import { PeakTable, peakCommand } from './domain/peaks.js';
import { DEFAULT_PERIODS, type SpinPeriods } from './domain/periods.js';
import { RouterGuard } from './domain/protect.js';
import { blockedMessages, TrafficTable } from './domain/traffic.js';
import { Enforcer } from './enforcer.js';
import type { SpinCore, SpinMessage } from './io/contract.js';
import { type SpinStore, storedNode } from './io/store.js';
import { every } from './io/timers.js';
import { WatchedFile } from './io/watched-file.js';
import type { CoreOptions } from './options.js';

export { pairKey } from './domain/blocks.js';
export { blockedFlow } from './domain/traffic.js';
export type { CoreOptions } from './options.js';

/** Bounds on what callers can make the app hold (each entry costs memory and firewall work). */
export const RPC_LIMITS = { listEntries: 10_000, rpcNodes: 500, nodeIps: 1024, blockedPairs: 10_000 } as const;

/** How a list command was asked for. */
export interface ListChange {
  /** The list name as the caller wrote it: the broadcast carries it (spind's behaviour). Default: the list's name. */
  as?: string;
  /** Block even what would cut the router (loopback, its own addresses, too wide a prefix). */
  force?: boolean;
}

export class Core implements SpinCore {
  readonly periods: SpinPeriods;
  /** Read-only for callers: commands change it. */
  readonly model: NodeModel;
  readonly messages$: SpinCore['messages$'];
  readonly handleRpc: SpinCore['handleRpc'];
  readonly counters = { conntrack: 0, dns: 0, neigh: 0, trafficMessages: 0, blocked: 0, firewallErrors: 0 };
  private readonly opts: CoreOptions;
  private readonly store: SpinStore;
  private readonly lists: Record<ListName, IpList> = {
    block: new IpList('block'),
    ignore: new IpList('ignore'),
    allow: new IpList('allow'),
  };
  private readonly names: DeviceNames;
  /** Loopback and the router's own addresses, which blocks must not cut (domain/protect.ts). */
  private readonly router: RouterGuard;
  /** Per-node traffic per minute for get_peak_info (domain/peaks.ts). */
  private readonly peaks = new PeakTable();
  /** Live nodes made by `node_add_ip node=0` (bounded by RPC_LIMITS). */
  private readonly rpcNodes = new Set<number>();
  private readonly announcer: Announcer;
  private readonly traffic = new TrafficTable();
  private readonly blocks: Blocks;
  private readonly neighbours = new Neighbours();
  private readonly enforcer: Enforcer;
  /** What the record handlers of domain/ingest.ts see of the core. */
  private readonly ingest: IngestHost;
  private readonly dirty = new Set<SpinNode>();
  private readonly deletedIds = new Set<number>();
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(opts: CoreOptions, rpc: (core: Core) => SpinCore['handleRpc']) {
    this.opts = opts;
    this.store = opts.store;
    this.periods = { ...DEFAULT_PERIODS, ...opts.periods };
    this.announcer = new Announcer({
      live: (n) => this.model.get(n.id) === n,
      isIgnored: (n) => this.isIgnored(n),
      json: (n) => this.nodeJson(n),
      learnMac: (mac, ip) => {
        if (this.lists.ignore.containsIp(ip) || !inScope(this.ingest, ip)) return;
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
          if (n.persistent > 0 && !this.closed) this.enforcer.schedule();
        },
        merged: (id, into) => this.onMerged(id, into),
        deleted: (n) => this.onDeleted(n),
      },
    });
    this.router = new RouterGuard(opts.routerAddresses ?? opts.ownAddresses, (l) => this.log(l));
    this.blocks = new Blocks(this.model, this.lists, (ip, name) => this.router.spareForName(ip, name));
    this.enforcer = new Enforcer({
      state: () => this.blocks.enforcement(),
      blockedBetween: (a, b) => this.blocks.blockedBetween(a, b),
      hasBlocks: () => this.blocks.hasBlocks(),
      onError: (err) => this.firewallError(err),
      log: (l) => this.log(l),
      netns: opts.netns,
      tableName: opts.tableName,
    });
    this.ingest = {
      periods: this.periods,
      model: this.model,
      lists: this.lists,
      opts,
      announcer: this.announcer,
      traffic: this.traffic,
      blocks: this.blocks,
      neighbours: this.neighbours,
      counters: this.counters,
      flushNodeInfo: () => this.flushNodeInfo(),
      followNames: (names, ip, exp) => this.followNames(names, ip, exp),
    };
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
    if (!stored.some((r) => r.list === 'ignore') && this.store.lastId() === 0) await this.refillIgnore();
    this.blocks.restore(this.store);
    this.announcer.pending.clear();
    await this.enforcer.apply();
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

  // ---- queries ----

  nodeJson(n: SpinNode): { id: number } & Record<string, unknown> {
    return this.model.toJson(n) as { id: number } & Record<string, unknown>;
  }

  isIgnored(n: SpinNode): boolean {
    return this.lists.ignore.containsAnyIp(n.ips);
  }

  /** The node with this id; `code` is the JSON-RPC error code when there is none. */
  node(id: number, code = -1): SpinNode {
    const n = this.model.get(id);
    if (!n) throw new SpinError('Unknown node id', code);
    return n;
  }

  /** The device with this MAC (any case). */
  device(mac: string): SpinNode {
    const d = this.model.ofMac(mac.toLowerCase());
    if (!d) throw new SpinError('Device not found');
    return d;
  }

  /** Devices not ignored, by MAC. */
  listedDevices(): SpinNode[] {
    return this.model
      .devices()
      .filter((n) => !this.isIgnored(n))
      .sort((a, b) => (a.mac! < b.mac! ? -1 : a.mac! > b.mac! ? 1 : 0));
  }

  /** Blocked node pairs (a < b), sorted. */
  blockedPairs(): [number, number][] {
    return [...this.blocks.pairs.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  }

  /** The nodes a blocked pair ties to this one. */
  blockedPeers(id: number): Set<number> {
    const out = new Set<number>();
    for (const [a, b] of this.blocks.pairs.values()) if (a === id || b === id) out.add(a === id ? b : a);
    return out;
  }

  /** A list's entries as list_iplist returns them. */
  listTexts(list: ListName): string[] {
    return this.lists[list].texts();
  }

  /** Accepts dots_signal (spind: dots_enabled). */
  get dotsEnabled(): boolean {
    return this.opts.dots === true;
  }

  // ---- commands: each updates the model, persists, enforces and announces ----

  /** A user name for a node (by MAC for devices, else by each address), kept across restarts. */
  renameNode(id: number, name: string): void {
    const n = this.node(id);
    const text = name.slice(0, 128);
    n.name = text;
    const keys = n.mac ? [n.mac] : [...n.ips].map((ip) => nameKey(ip)!).filter(Boolean);
    for (const k of keys) this.names.setUser(k, text);
    this.store.setName(keys, text);
    this.model.touch(n);
    this.flushNodeInfo();
  }

  /** Gives a node another address; node 0 makes a new node of it (at most RPC_LIMITS.rpcNodes live). */
  addNodeIp(id: number, address: string): void {
    const ip = canonicalIp(address);
    if (!ip) throw new SpinError('Not a valid IP address');
    if (this.model.ofIp(ip)) throw new SpinError('IP address already assigned to a node');
    if (id === 0) {
      // Nodes made by callers are counted while they live: node=0 cannot grow the model without bound.
      for (const n of this.rpcNodes) if (!this.model.get(n)) this.rpcNodes.delete(n);
      if (this.rpcNodes.size >= RPC_LIMITS.rpcNodes)
        throw new SpinError(`Too many nodes added by RPC (at most ${RPC_LIMITS.rpcNodes})`);
      this.rpcNodes.add(this.model.learn({ ips: [ip] }).id);
    } else {
      const n = this.node(id);
      if (n.ips.size >= RPC_LIMITS.nodeIps) throw new SpinError(`Node has ${RPC_LIMITS.nodeIps} addresses already`);
      this.model.addIp(n, ip);
    }
    this.flushNodeInfo();
  }

  /** Blocks traffic between two nodes (nothing for unknown nodes or a node with itself, as spind). */
  async blockFlow(a: number, b: number): Promise<void> {
    if (this.blocks.pairs.size >= RPC_LIMITS.blockedPairs)
      throw new SpinError(`Too many blocked flows (at most ${RPC_LIMITS.blockedPairs})`);
    await this.setPair(a, b, true);
  }

  async unblockFlow(a: number, b: number): Promise<void> {
    await this.setPair(a, b, false);
  }

  /** Puts a node's addresses (and, but for `ignore`, its names) on a list; the node is held while listed. */
  addNodeToList(list: ListName, id: number, how: ListChange = {}): Promise<void> {
    return this.listNode(list, id, true, how);
  }

  removeNodeFromList(list: ListName, id: number, how: ListChange = {}): Promise<void> {
    return this.listNode(list, id, false, how);
  }

  /** Blocks a node (DOTS mitigation). */
  blockNode(id: number): Promise<void> {
    return this.addNodeToList('block', id);
  }

  /** Puts an address, a prefix or a DNS name on a list. */
  async addToList(list: ListName, text: string, how: ListChange = {}): Promise<void> {
    const e = this.entry(text);
    if (list === 'block' && e.kind === 'ip') await this.refuseRouterCut([e.prefix], how.force);
    this.checkRoom(list, 1);
    this.lists[list].add(e);
    await this.listChanged(list, how.as ?? list);
  }

  async removeFromList(list: ListName, text: string, how: ListChange = {}): Promise<void> {
    this.lists[list].remove(this.entry(text));
    await this.listChanged(list, how.as ?? list);
  }

  /** The ignore list becomes the router's own addresses (and those given at start) again. */
  async resetIgnoreList(): Promise<void> {
    await this.refillIgnore();
    this.broadcastList('ignore', 'ignore');
  }

  // ---- ingest (domain/ingest.ts) ----

  onConntrack(r: ConntrackRecord): void {
    onConntrack(this.ingest, r);
  }

  onDns(r: DnsRecord): void {
    onDns(this.ingest, r);
  }

  onNeigh(r: NeighRecord): void {
    onNeigh(this.ingest, r);
  }

  /** True when the neighbour table lists the MAC now. */
  liveMac(mac: string): boolean {
    return this.neighbours.live(mac);
  }

  // ---- periodic work ----

  /** Publishes the second's traffic (nodeInfo first) and the blocked packets. */
  async tick(): Promise<void> {
    this.publishTraffic();
    if (this.blocks.hasBlocks()) await this.publishBlocked();
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

  /**
   * Runs a JSON-RPC batch: every change it makes reaches the kernel in one
   * nft transaction at its end (not one rebuild per call).
   */
  inBatch<T>(run: () => Promise<T>): Promise<T> {
    return this.enforcer.inBatch(run);
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
    try {
      this.syncStore();
    } catch (err) {
      this.log(`store: ${(err as Error).message}`);
    }
    await this.enforcer.close();
    this.announcer.complete();
  }

  // ---- internals ----

  private async publishBlocked(): Promise<void> {
    const drops = await this.enforcer.drops();
    const msgs = blockedMessages(drops, this.lists.ignore, this.model);
    this.flushNodeInfo();
    this.counters.blocked += msgs.length;
    for (const m of msgs) this.announcer.emit(m);
  }

  private async setPair(a: number, b: number, block: boolean): Promise<void> {
    const changed = this.blocks.setPair(a, b, block);
    if (!changed) return;
    for (const n of changed) this.dirty.add(n);
    this.syncStore();
    this.store.savePairs([...this.blocks.pairs.values()]);
    await this.enforcer.enforce();
  }

  private async listNode(list: ListName, id: number, add: boolean, how: ListChange): Promise<void> {
    const n = this.node(id, -2);
    if (add && list === 'block')
      await this.refuseRouterCut(
        [...n.ips].map((ip) => parsePrefix(ip)!),
        how.force,
      );
    const l = this.lists[list];
    const entries = [...n.ips].map((ip) => parseEntry(ip, false)!);
    // Beyond spind: a node's names join the list too, so its addresses follow DNS (issue #36).
    if (list !== 'ignore') for (const d of n.domains) entries.push(parseEntry(d)!);
    if (add) this.checkRoom(list, entries.length);
    for (const e of entries) {
      if (add) l.add(e);
      else l.remove(e);
    }
    if (list === 'block') n.isBlocked = add;
    if (list === 'allow') n.isExcepted = add;
    if (add) n.persistent++;
    else n.persistent = Math.max(0, n.persistent - 1);
    this.model.touch(n);
    this.saveList(list);
    this.syncStore();
    await this.afterListChange(list, how.as ?? list);
  }

  private entry(text: string): ListEntry {
    const e = parseEntry(text);
    if (!e) throw new SpinError('Invalid IP address');
    return e;
  }

  private checkRoom(list: ListName, more: number): void {
    if (this.lists[list].size + more > RPC_LIMITS.listEntries)
      throw new SpinError(`The ${list} list is full (at most ${RPC_LIMITS.listEntries} entries)`);
  }

  /** Refuses a block that would cut the router (loopback, its own addresses, too wide) unless forced. */
  private async refuseRouterCut(prefixes: Prefix[], force = false): Promise<void> {
    if (force) return;
    await this.router.refresh();
    for (const p of prefixes) {
      const why = this.router.reason(p);
      if (why) throw new SpinError(`Refused: ${why} (add "force": 1 to block it anyway)`, -3);
    }
  }

  private async listChanged(list: ListName, as: string): Promise<void> {
    this.saveList(list);
    await this.afterListChange(list, as);
  }

  /** Name addresses follow the list, the kernel enforces it, and everyone hears of it. */
  private async afterListChange(list: ListName, as: string): Promise<void> {
    if (list !== 'ignore') {
      for (const key of this.lists[list].domainKeys()) this.blocks.seed(list, key);
      this.store.saveNameAddrs(list, this.blocks.prune(list));
      await this.enforcer.enforce();
    }
    this.flushNodeInfo();
    this.broadcastList(list, as);
  }

  private saveList(list: ListName): void {
    this.store.saveList(
      list,
      this.lists[list].all().map((e) => e.text),
    );
  }

  /** Broadcasts a list under the name the caller used (spind's behaviour). */
  private broadcastList(list: ListName, as: string): void {
    this.announcer.emit(listMessage(as, this.lists[list].texts()));
  }

  private async refillIgnore(): Promise<void> {
    const own = await this.opts.ownAddresses();
    this.lists.ignore.clear();
    for (const a of own) {
      const e = parseEntry(a, false);
      if (e) this.lists.ignore.add(e);
    }
    this.saveList('ignore');
  }

  private firewallError(err: unknown): void {
    this.counters.firewallErrors++;
    this.log(`firewall: ${(err as Error).message}`);
  }

  /** An answer for a listed name: its address joins the name set until the TTL runs out (persisted, enforced). */
  private followNames(names: string[], ip: string, exp: number): void {
    for (const list of ['block', 'allow'] as const) {
      const name = this.blocks.follow(list, names, ip, exp);
      if (name === undefined) continue;
      this.store.putNameAddr(list, domainKey(name), ip, exp);
      this.enforcer.nameAddress(list, ip, exp);
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
      this.store.savePairs([...this.blocks.pairs.values()]);
      if (!this.closed) this.enforcer.schedule();
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
