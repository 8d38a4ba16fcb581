/**
 * SPIN's node cache (docs/spin-protocol.md §3): a node is an address with its
 * names; a device is a node with a MAC from the neighbour table and carries
 * flows to peer nodes. New information merges every node sharing its MAC, an
 * IP or a domain into one survivor (devices first, then the lowest id).
 *
 * Unlike spind: two devices with different MACs never merge (an IP that moves
 * to another MAC moves alone); device flows pointing at a merged-away node
 * are renumbered to the survivor; ids continue from where a previous run
 * stopped (the caller restores them).
 *
 * Bounded, because any LAN host chooses the names it asks for: each new
 * query name is a node, and a client asking for random names made 2.5
 * million of them (6.5 GB) in under three minutes. Past `maxNodes` the
 * nodes nothing holds (no flow, not kept, not a device) are evicted, least
 * recently seen first, once the record being taken in is done. A node keeps at most
 * MAX_DOMAINS_PER_NODE names (20 000 under one wildcard made merges quadratic:
 * 77 s of CPU) and MAX_IPS_PER_NODE addresses (`domainsDropped`, `ipsDropped`).
 */
import { ageFlows, countFlow, dropAllFlows, flowsOf, mergeFlow, releasePeers, takeFlows } from './flows.js';
import { domainKey } from './ip.js';
import { type DeviceFlow, type NodeInfo, nodeJson, type SpinNode } from './node.js';

export type { DeviceFlow, NodeInfo, SpinNode } from './node.js';

export interface ModelEvents {
  /** The node's published form changed (nodeInfo due). */
  modified(n: SpinNode): void;
  merged(id: number, into: SpinNode): void;
  deleted(n: SpinNode): void;
}

export interface ModelOptions {
  events: ModelEvents;
  /** Name for a new node or a new device: user names, then DHCP (by MAC, else by IP). */
  nameFor?: (mac: string | undefined, ips: Iterable<string>) => string | undefined;
  /** ms clock (tests pass their own). */
  now?: () => number;
  firstId?: number;
  /** Nodes at most before the oldest that nothing holds are evicted (default DEFAULT_MAX_NODES). */
  maxNodes?: number;
}

export const DEFAULT_MAX_NODES = 50_000;
/** Names one node keeps (a shared hosting address may have hundreds; a wildcard domain, any number). */
export const MAX_DOMAINS_PER_NODE = 256;
/**
 * Addresses one node keeps (a CDN's name resolves to dozens; a name of its own, which any LAN host may ask
 * for, to any number: 61 000 under one name cost 58 ms per answer).
 */
export const MAX_IPS_PER_NODE = 1024;

const NO_DOMAINS: ReadonlySet<string> = new Set<string>();

function addDomain(n: SpinNode, d: string): void {
  if (n.domains === NO_DOMAINS) n.domains = new Set([d]);
  else (n.domains as Set<string>).add(d);
}

export class NodeModel {
  private nextId: number;
  private readonly byId = new Map<number, SpinNode>();
  private readonly byIp = new Map<string, SpinNode>();
  private readonly byMac = new Map<string, SpinNode>();
  private readonly byDomain = new Map<string, SpinNode>();
  private readonly ev: ModelEvents;
  private readonly nameFor: NonNullable<ModelOptions['nameFor']>;
  readonly now: () => number;
  private readonly peerOf = (id: number) => this.byId.get(id);
  private readonly maxNodes: number;
  private trimQueued = false;
  /** After a pass that could not get under maxNodes (devices fill it): the node id to try again at, not every node. */
  private retryAt = 0;
  /** Nodes evicted to stay within maxNodes; names and addresses not kept past their caps per node. */
  evicted = 0;
  domainsDropped = 0;
  ipsDropped = 0;

  constructor(opts: ModelOptions) {
    this.ev = opts.events;
    this.nameFor = opts.nameFor ?? (() => undefined);
    this.now = opts.now ?? Date.now;
    this.nextId = opts.firstId ?? 1;
    this.maxNodes = opts.maxNodes ?? DEFAULT_MAX_NODES;
  }

  get size(): number {
    return this.byId.size;
  }
  get lastId(): number {
    return this.nextId - 1;
  }
  get(id: number): SpinNode | undefined {
    return this.byId.get(id);
  }
  ofIp(ip: string): SpinNode | undefined {
    return this.byIp.get(ip);
  }
  ofMac(mac: string): SpinNode | undefined {
    return this.byMac.get(mac);
  }
  ofDomain(d: string): SpinNode | undefined {
    return this.byDomain.get(domainKey(d));
  }
  nodes(): IterableIterator<SpinNode> {
    return this.byId.values();
  }
  devices(): SpinNode[] {
    return [...this.byMac.values()];
  }

  /** A node with exactly this id and identity (restoring a previous run); ids after it continue above. */
  restore(id: number, info: NodeInfo & { lastseen: number; isBlocked?: boolean; isExcepted?: boolean }): SpinNode {
    const n = this.make(id, info.lastseen);
    n.isBlocked = info.isBlocked ?? false;
    n.isExcepted = info.isExcepted ?? false;
    this.addInfo(n, info);
    if (info.name) n.name = info.name;
    this.nextId = Math.max(this.nextId, id + 1);
    return n;
  }

  /** Makes sure the id counter starts above `id` (ids are never reused, across runs either). */
  reserveIds(lastId: number): void {
    this.nextId = Math.max(this.nextId, lastId + 1);
  }

  /** Fast path for traffic: the node of an address, created when new; `seen` refreshes lastseen. */
  nodeOfIp(ip: string, seen: boolean): SpinNode {
    const n = this.byIp.get(ip);
    if (n) {
      if (seen) n.lastseen = Math.max(n.lastseen, this.nowS());
      return n;
    }
    return this.learn({ ips: [ip] });
  }

  /** Adds what is known about one thing, merging every node that shares its MAC, an IP or a domain. */
  learn(info: NodeInfo): SpinNode {
    const cands = new Set<SpinNode>();
    if (info.mac) {
      const n = this.byMac.get(info.mac);
      if (n) cands.add(n);
    }
    const ips = [...(info.ips ?? [])];
    for (const ip of ips) {
      const n = this.byIp.get(ip);
      if (!n) continue;
      if (info.mac && n.mac && n.mac !== info.mac)
        this.detachIp(n, ip); // the address moved to another device
      else cands.add(n);
    }
    const domains = [...(info.domains ?? [])];
    for (const d of domains) {
      const n = this.byDomain.get(domainKey(d));
      if (!n) continue;
      if (info.mac && n.mac && n.mac !== info.mac)
        this.detachDomain(n, d); // the name now leads to another device
      else cands.add(n);
    }
    if (cands.size === 0) {
      if (this.byId.size >= this.maxNodes && this.nextId >= this.retryAt && !this.trimQueued) {
        // After the record being taken in: its nodes, fetched already, must stay valid while it is.
        this.trimQueued = true;
        queueMicrotask(() => {
          this.trimQueued = false;
          this.makeRoom();
        });
      }
      const n = this.make(this.nextId++, this.nowS());
      this.addInfo(n, info);
      n.name ??= info.name ?? this.nameFor(n.mac, n.ips);
      this.ev.modified(n);
      return n;
    }
    const sorted = [...cands].sort((a, b) => (a.mac ? 0 : 1) - (b.mac ? 0 : 1) || a.id - b.id);
    const s = sorted[0];
    const losers = sorted.slice(1).filter((n) => !(n.mac && s.mac && n.mac !== s.mac));
    for (const l of losers) this.absorb(s, l);
    const before = this.signature(s);
    const wasDevice = s.mac !== undefined;
    this.addInfo(s, info);
    if (!wasDevice && s.mac && !s.name) s.name = this.nameFor(s.mac, s.ips);
    if (losers.length > 0 || this.signature(s) !== before) this.ev.modified(s);
    for (const l of losers) this.ev.merged(l.id, s);
    return s;
  }

  /** The live node a node is now: itself, the survivor it merged into (which took its addresses and names), or undefined. */
  current(n: SpinNode): SpinNode | undefined {
    if (this.byId.get(n.id) === n) return n;
    for (const ip of n.ips) return this.byIp.get(ip);
    for (const d of n.domains) return this.byDomain.get(domainKey(d));
    return undefined;
  }

  /** Marks a node changed from outside (name, list flags): its nodeInfo is due. */
  touch(n: SpinNode): void {
    this.ev.modified(n);
  }

  /** Adds an address to an existing node (RPC node_add_ip); no merge. */
  addIp(n: SpinNode, ip: string): void {
    if (this.byIp.has(ip)) return;
    n.ips.add(ip);
    this.byIp.set(ip, n);
    this.ev.modified(n);
  }

  /** Counts traffic of a device with `peer` (both directions' packets and bytes; flows.ts). */
  countFlow(device: SpinNode, peer: SpinNode, dstPort: number, icmpType: number, packets: number, bytes: number): void {
    countFlow(device, peer, dstPort, icmpType, packets, bytes, this.nowS(), this.peerOf);
  }

  /** Every flow of a device. */
  flowsOf(device: SpinNode): DeviceFlow[] {
    return flowsOf(device);
  }

  /** One aging pass over the devices' flows (flows.ts#ageFlows); returns how many flows went. */
  ageFlows(idleMs: number, keep: number, maxIdleMs: number, held?: (d: SpinNode, to: number) => boolean): number {
    return ageFlows(this.byMac.values(), this.nowS(), idleMs, keep, maxIdleMs, held, this.peerOf);
  }

  /**
   * Deletes nodes unseen for `retainMs` that nothing holds: not referenced by
   * a device flow, not persistent, not a device whose neighbour entry is live.
   */
  expire(retainMs: number, deviceRetainMs: number, liveMac: (mac: string) => boolean): SpinNode[] {
    const now = this.nowS();
    const gone: SpinNode[] = [];
    for (const n of this.byId.values()) {
      if (n.persistent > 0 || n.refs > 0) continue;
      if (n.mac && liveMac(n.mac)) continue;
      if ((now - n.lastseen) * 1000 < (n.mac ? deviceRetainMs : retainMs)) continue;
      gone.push(n);
    }
    for (const n of gone) this.remove(n);
    return gone;
  }

  /**
   * Past maxNodes: evicts nodes nothing holds (no flow points at them, not kept, not a device), least recently
   * seen first, down to nine tenths of maxNodes: one pass over the nodes per many new ones. When too few are
   * free (one packet to each of 200 000 hosts holds them all), the oldest device flows go first.
   */
  private makeRoom(): void {
    const over = this.byId.size - Math.floor(this.maxNodes * 0.9);
    if (over <= 0) return;
    const evictable = (n: SpinNode) => n.refs === 0 && n.persistent === 0 && !n.mac;
    let free = [...this.byId.values()].filter(evictable);
    if (free.length < over) {
      releasePeers(this.byMac.values(), over - free.length, this.peerOf, (n) => n.persistent === 0 && !n.mac);
      free = [...this.byId.values()].filter(evictable);
    }
    free.sort((a, b) => a.lastseen - b.lastseen || a.id - b.id);
    for (const n of free.slice(0, over)) {
      this.remove(n);
      this.evicted++;
    }
    this.retryAt = this.byId.size >= this.maxNodes ? this.nextId + Math.ceil(this.maxNodes / 10) : 0;
  }

  /** Removes a node and its flows; publishes nodeDeleted. */
  remove(n: SpinNode): void {
    if (this.byId.get(n.id) !== n) return;
    dropAllFlows(n, this.peerOf);
    if (n.refs > 0) for (const d of this.byMac.values()) takeFlows(d, n);
    for (const ip of n.ips) if (this.byIp.get(ip) === n) this.byIp.delete(ip);
    for (const d of n.domains) if (this.byDomain.get(domainKey(d)) === n) this.byDomain.delete(domainKey(d));
    if (n.mac && this.byMac.get(n.mac) === n) this.byMac.delete(n.mac);
    this.byId.delete(n.id);
    this.ev.deleted(n);
  }

  /** SPIN's serialized node object (node.ts nodeJson). */
  toJson(n: SpinNode): Record<string, unknown> {
    return nodeJson(n);
  }

  private nowS(): number {
    return Math.floor(this.now() / 1000);
  }

  private make(id: number, lastseen: number): SpinNode {
    const n: SpinNode = {
      id,
      ips: new Set(),
      domains: NO_DOMAINS,
      name: undefined,
      mac: undefined,
      lastseen,
      isBlocked: false,
      isExcepted: false,
      refs: 0,
      persistent: 0,
      flows: undefined,
      flowCount: 0,
    };
    this.byId.set(id, n);
    return n;
  }

  private signature(n: SpinNode): string {
    return `${n.name}|${n.mac}|${n.ips.size}|${n.domains.size}|${n.isBlocked}|${n.isExcepted}`;
  }

  private addInfo(n: SpinNode, info: NodeInfo): void {
    if (info.mac && !n.mac && !this.byMac.has(info.mac)) {
      n.mac = info.mac;
      this.byMac.set(info.mac, n);
    }
    for (const ip of info.ips ?? []) {
      const holder = this.byIp.get(ip);
      if (holder && holder !== n) continue; // held by a device we did not merge with
      if (!holder && n.ips.size >= MAX_IPS_PER_NODE) {
        this.ipsDropped++;
        continue;
      }
      n.ips.add(ip);
      this.byIp.set(ip, n);
    }
    for (const d of info.domains ?? []) {
      const k = domainKey(d);
      const holder = this.byDomain.get(k);
      if (holder) continue; // n's own, or held by a device we did not merge with
      if (n.domains.size >= MAX_DOMAINS_PER_NODE) {
        this.domainsDropped++;
        continue;
      }
      addDomain(n, d);
      this.byDomain.set(k, n);
    }
    if (info.name && !n.name) n.name = info.name;
  }

  private detachIp(n: SpinNode, ip: string): void {
    n.ips.delete(ip);
    this.byIp.delete(ip);
    this.ev.modified(n);
  }

  private detachDomain(n: SpinNode, d: string): void {
    const k = domainKey(d);
    if (n.domains.size > 0) n.domains = new Set([...n.domains].filter((x) => domainKey(x) !== k));
    this.byDomain.delete(k);
    this.ev.modified(n);
  }

  /** Moves everything of `l` into `s`; flows pointing at `l` now point at `s`. */
  private absorb(s: SpinNode, l: SpinNode): void {
    this.byId.delete(l.id);
    if (l.mac && this.byMac.get(l.mac) === l) this.byMac.delete(l.mac);
    for (const ip of l.ips) {
      if (!s.ips.has(ip) && s.ips.size >= MAX_IPS_PER_NODE) {
        if (this.byIp.get(ip) === l) this.byIp.delete(ip);
        this.ipsDropped++;
        continue;
      }
      s.ips.add(ip);
      this.byIp.set(ip, s);
    }
    for (const d of l.domains) {
      const k = domainKey(d);
      // byDomain says whose a name is: s's own already, or now s's (l's), if s has room for it.
      if (this.byDomain.get(k) === s) continue;
      if (s.domains.size >= MAX_DOMAINS_PER_NODE) {
        this.byDomain.delete(k);
        this.domainsDropped++;
        continue;
      }
      addDomain(s, d);
      this.byDomain.set(k, s);
    }
    if (!s.mac && l.mac) {
      s.mac = l.mac;
      this.byMac.set(l.mac, s);
    }
    s.name ??= l.name;
    s.lastseen = Math.max(s.lastseen, l.lastseen);
    s.isBlocked ||= l.isBlocked;
    s.isExcepted ||= l.isExcepted;
    s.persistent += l.persistent;
    // Flows of devices that pointed at l now point at s (none at all when s is that device).
    if (l.refs > 0)
      for (const dev of this.byMac.values()) {
        const taken = takeFlows(dev, l);
        if (dev !== s) for (const f of taken) mergeFlow(dev, f, s);
      }
    // l's own flows (it was a device) join s's.
    if (l.flows) {
      const own = flowsOf(l);
      dropAllFlows(l, this.peerOf);
      for (const f of own) {
        const peer = this.byId.get(f.to);
        if (peer && peer !== s) mergeFlow(s, f, peer);
      }
    }
  }
}
