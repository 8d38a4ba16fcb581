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
import * as lists from './core/lists.js';
import * as nodes from './core/nodes.js';
import type { CoreParts, ListChange } from './core/parts.js';
import * as periodic from './core/periodic.js';
import * as restore from './core/restore.js';
import { Announcer } from './domain/announce.js';
import { Blocks } from './domain/blocks.js';
import { SpinError } from './domain/errors.js';
import { inScope, onConntrack, onDns, onMacLearned, onNeigh } from './domain/ingest.js';
import type { IngestHost } from './domain/ingest-host.js';
import { IpList, type ListName } from './domain/lists.js';
import { NodeModel, type SpinNode } from './domain/model.js';
import { DeviceNames, parseLeases, parseNamesFile } from './domain/names.js';
import { Neighbours } from './domain/neighbours.js';
import { PeakTable, peakCommand } from './domain/peaks.js';
import { PendingDeltas } from './domain/pending.js';
import { DEFAULT_PERIODS, type SpinPeriods } from './domain/periods.js';
import { RouterGuard } from './domain/protect.js';
import { TrafficTable } from './domain/traffic.js';
import { Enforcer } from './enforcer.js';
import type { SpinCore, SpinMessage } from './io/contract.js';
import type { SpinStore } from './io/store.js';
import { every } from './io/timers.js';
import { WatchedFile } from './io/watched-file.js';
import type { CoreOptions } from './options.js';

export { type ListChange, RPC_LIMITS } from './core/parts.js';
export { pairKey } from './domain/blocks.js';
export { blockedFlow } from './domain/traffic.js';
export type { CoreOptions } from './options.js';

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
  /** Conntrack deltas waiting for an end's MAC (domain/pending.ts). */
  readonly pending: PendingDeltas;
  private readonly enforcer: Enforcer;
  /** What the record handlers of domain/ingest.ts see of the core. */
  private readonly ingest: IngestHost;
  private readonly dirty = new Set<SpinNode>();
  private readonly deletedIds = new Set<number>();
  /** What the modules of core/ see of the core. */
  private readonly parts: CoreParts;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(opts: CoreOptions, rpc: (core: Core) => SpinCore['handleRpc']) {
    this.opts = opts;
    this.store = opts.store;
    this.periods = { ...DEFAULT_PERIODS, ...opts.periods };
    this.announcer = new Announcer({
      live: (n) => this.model.get(n.id) === n,
      current: (n) => this.model.current(n),
      isIgnored: (n) => this.isIgnored(n),
      json: (n) => this.nodeJson(n),
      learnMac: (mac, ip) => {
        if (this.lists.ignore.containsIp(ip) || !inScope(this.ingest, ip)) return;
        this.neighbours.add(mac, ip);
        this.model.learn({ mac, ips: [ip] });
        onMacLearned(this.ingest, ip);
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
        merged: (id, into) => nodes.onMerged(this.parts, id, into),
        deleted: (n) => nodes.onDeleted(this.parts, n),
      },
    });
    this.pending = new PendingDeltas(this.model.now);
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
      pending: this.pending,
      counters: this.counters,
      flushNodeInfo: () => this.flushNodeInfo(),
      followNames: (names, ip, exp) => nodes.followNames(this.parts, names, ip, exp),
    };
    this.parts = {
      opts,
      periods: this.periods,
      model: this.model,
      store: this.store,
      lists: this.lists,
      names: this.names,
      router: this.router,
      peaks: this.peaks,
      rpcNodes: this.rpcNodes,
      announcer: this.announcer,
      traffic: this.traffic,
      blocks: this.blocks,
      enforcer: this.enforcer,
      counters: this.counters,
      dirty: this.dirty,
      deletedIds: this.deletedIds,
      closed: () => this.closed,
      node: (id, code) => this.node(id, code),
      isIgnored: (n) => this.isIgnored(n),
      flushNodeInfo: () => this.flushNodeInfo(),
      syncStore: () => this.syncStore(),
      liveMac: (mac) => this.liveMac(mac),
      log: (line) => this.log(line),
    };
    this.handleRpc = rpc(this);
  }

  /** Restores the previous run, enforces its lists and blocks at once, starts the timers. */
  async start(): Promise<void> {
    await restore.restore(this.parts);
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
    return restore.startupMessages(this.parts, (n) => this.nodeJson(n));
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

  // ---- commands (core/nodes.ts, core/lists.ts): each updates the model, persists, enforces and announces ----

  /** A user name for a node (by MAC for devices, else by each address), kept across restarts. */
  renameNode(id: number, name: string): void {
    nodes.renameNode(this.parts, id, name);
  }

  /** Gives a node another address; node 0 makes a new node of it (at most RPC_LIMITS.rpcNodes live). */
  addNodeIp(id: number, address: string): void {
    nodes.addNodeIp(this.parts, id, address);
  }

  /** Blocks traffic between two nodes (nothing for unknown nodes or a node with itself, as spind). */
  async blockFlow(a: number, b: number): Promise<void> {
    await nodes.setPair(this.parts, a, b, true);
  }

  async unblockFlow(a: number, b: number): Promise<void> {
    await nodes.setPair(this.parts, a, b, false);
  }

  /** Puts a node's addresses (and, but for `ignore`, its names) on a list; the node is held while listed. */
  addNodeToList(list: ListName, id: number, how: ListChange = {}): Promise<void> {
    return lists.listNode(this.parts, list, id, true, how);
  }

  removeNodeFromList(list: ListName, id: number, how: ListChange = {}): Promise<void> {
    return lists.listNode(this.parts, list, id, false, how);
  }

  /** Blocks a node (DOTS mitigation). */
  blockNode(id: number): Promise<void> {
    return this.addNodeToList('block', id);
  }

  /** Puts an address, a prefix or a DNS name on a list. */
  addToList(list: ListName, text: string, how: ListChange = {}): Promise<void> {
    return lists.addToList(this.parts, list, text, how);
  }

  removeFromList(list: ListName, text: string, how: ListChange = {}): Promise<void> {
    return lists.removeFromList(this.parts, list, text, how);
  }

  /** The ignore list becomes the router's own addresses (and those given at start) again. */
  resetIgnoreList(): Promise<void> {
    return lists.resetIgnoreList(this.parts);
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

  // ---- periodic work (core/periodic.ts) ----

  /** Publishes the second's traffic (nodeInfo first) and the blocked packets. */
  async tick(): Promise<void> {
    this.publishTraffic();
    if (this.blocks.hasBlocks()) await periodic.publishBlocked(this.parts);
    else this.flushNodeInfo();
  }

  publishTraffic(): void {
    periodic.publishTraffic(this.parts);
  }

  ageFlows(): number {
    return periodic.ageFlows(this.parts);
  }

  expireNodes(): SpinNode[] {
    return periodic.expireNodes(this.parts);
  }

  /** Writes changed node identities (and the id counter) to the store. */
  syncStore(): void {
    periodic.syncStore(this.parts);
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

  private firewallError(err: unknown): void {
    this.counters.firewallErrors++;
    this.log(`firewall: ${(err as Error).message}`);
  }
}
