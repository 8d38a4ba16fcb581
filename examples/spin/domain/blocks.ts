/**
 * What the core blocks and allows besides its address lists: blocked node
 * pairs (which hold their nodes, and follow a merge to the survivor) and the
 * addresses DNS answers gave for listed names, with their expiry; from them
 * and the lists, what the firewall enforces. State only: the core persists
 * and applies it.
 */
import { domainKey, type Prefix } from './ip.js';
import type { IpList, ListName } from './lists.js';
import type { NodeModel, SpinNode } from './model.js';

export const pairKey = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);

/** Names whose DNS answers are remembered (a listed name's addresses join its set at once when listed). */
export const MAX_ANSWER_NAMES = 100_000;
/** Addresses remembered per name: its newest (a name of its own, which any LAN host may ask for, has any number). */
export const MAX_ANSWER_ADDRESSES = 256;
/** Addresses in a name list's kernel set (bname/aname); past it, answers add none until some expire. */
export const MAX_NAME_ADDRESSES = 65_536;

export type NameList = 'block' | 'allow';

/** What the firewall enforces (io/firewall.ts builds the nft table from it). */
export interface Enforcement {
  block: Prefix[];
  allow: Prefix[];
  /** Address pairs to drop in both directions (same family). */
  pairs: [string, string][];
  /** Addresses of blocked / allowed names → expiry in ms since the epoch. */
  blockNames: Map<string, number>;
  allowNames: Map<string, number>;
}

/** What a previous run kept of the blocks (the store's rows). */
export interface StoredBlocks {
  /** Blocked pairs, a < b. */
  pairs(): [number, number][];
  /** Addresses of listed names still valid at `now`: (name, address, expiry ms). */
  nameAddrs(list: NameList, now: number): [string, string, number][];
}

export class Blocks {
  /** Blocked node pairs, key `a-b` with a < b. */
  readonly pairs = new Map<string, [number, number]>();
  /** Addresses of blocked / allowed names → expiry (ms). */
  readonly nameAddrs = { block: new Map<string, number>(), allow: new Map<string, number>() };
  /** name key → address → expiry (ms): what DNS answers said, for blocks by name. */
  private readonly answers = new Map<string, Map<string, number>>();
  private readonly model: NodeModel;
  private readonly lists: Record<ListName, IpList>;
  /** Loopback and the router's own addresses: a blocked name resolving to one does not block it (protect.ts). */
  private readonly spared: (ip: string, name: string) => boolean;

  constructor(
    model: NodeModel,
    lists: Record<ListName, IpList>,
    spared: (ip: string, name: string) => boolean = () => false,
  ) {
    this.model = model;
    this.lists = lists;
    this.spared = spared;
  }

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

  // ---- pairs ----

  /** The previous run's pairs (a < b; kept when both nodes still exist) and addresses of listed names. */
  restore(store: StoredBlocks): void {
    for (const [a, b] of store.pairs()) {
      const na = this.model.get(a);
      const nb = this.model.get(b);
      if (!na || !nb) continue;
      this.pairs.set(`${a}-${b}`, [a, b]);
      na.persistent++;
      nb.persistent++;
    }
    const now = this.model.now();
    for (const list of ['block', 'allow'] as const)
      for (const [name, ip, exp] of store.nameAddrs(list, now)) {
        this.remember(name, ip, exp);
        if (list === 'block' && this.spared(ip, name)) continue;
        this.nameAddrs[list].set(ip, Math.max(exp, this.nameAddrs[list].get(ip) ?? 0));
      }
  }

  /** Blocks or unblocks a pair; the two nodes when that changed anything. */
  setPair(a: number, b: number, block: boolean): [SpinNode, SpinNode] | undefined {
    if (a === b) return undefined;
    const na = this.model.get(a);
    const nb = this.model.get(b);
    if (!na || !nb) return undefined;
    const key = pairKey(a, b);
    if (block === this.pairs.has(key)) return undefined;
    if (block) {
      this.pairs.set(key, a < b ? [a, b] : [b, a]);
      na.persistent++;
      nb.persistent++;
    } else {
      this.pairs.delete(key);
      na.persistent--;
      nb.persistent--;
    }
    return [na, nb];
  }

  /** Blocked pairs follow the survivor when node `id` merges into `into`; true when any changed. */
  mergePairs(id: number, into: SpinNode): boolean {
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
    return changed;
  }

  /** For flow aging: whether a device flow is held by a blocked pair (undefined when none is blocked). */
  held(): ((d: SpinNode, to: number) => boolean) | undefined {
    return this.pairs.size > 0 ? (d: SpinNode, to: number) => this.pairs.has(pairKey(d.id, to)) : undefined;
  }

  // ---- addresses of names ----

  /**
   * Notes what a DNS answer said about a name (bounded: new names are not kept past MAX_ANSWER_NAMES, and a
   * name keeps its MAX_ANSWER_ADDRESSES newest addresses).
   */
  remember(name: string, ip: string, exp: number): void {
    const k = domainKey(name);
    let m = this.answers.get(k);
    if (!m) {
      if (this.answers.size >= MAX_ANSWER_NAMES) return;
      this.answers.set(k, (m = new Map()));
    }
    const had = m.get(ip);
    if (had === undefined && m.size >= MAX_ANSWER_ADDRESSES) m.delete(m.keys().next().value as string);
    m.set(ip, Math.max(exp, had ?? 0));
  }

  /**
   * An answer for a listed name: its address joins the name set until the TTL
   * runs out. Returns the listed name when the address is new to the set or
   * its expiry moved on by more than a second (to persist and enforce).
   */
  follow(list: NameList, names: string[], ip: string, exp: number): string | undefined {
    if (this.lists[list].size === 0) return undefined;
    const name = names.find((n) => this.lists[list].containsDomain(n));
    if (name === undefined) return undefined;
    if (list === 'block' && this.spared(ip, name)) return undefined;
    if (!this.nameAddrs[list].has(ip) && this.nameAddrs[list].size >= MAX_NAME_ADDRESSES) return undefined;
    const cur = this.nameAddrs[list].get(ip) ?? 0;
    this.nameAddrs[list].set(ip, Math.max(cur, exp));
    return exp <= cur + 1000 ? undefined : name;
  }

  /** A listed name's known addresses join its set at once; later answers add more (follow). */
  seed(list: NameList, name: string): void {
    const m = this.answers.get(domainKey(name));
    if (!m) return;
    const now = this.model.now();
    for (const [ip, exp] of m) {
      if (exp <= now || (list === 'block' && this.spared(ip, name))) continue;
      this.nameAddrs[list].set(ip, exp);
    }
  }

  /** Drops the name addresses that no listed name covers any more; the rows (name, address, expiry) to keep. */
  prune(list: NameList): [string, string, number][] {
    const keep = new Map<string, number>();
    const rows: [string, string, number][] = [];
    const now = this.model.now();
    for (const [name, m] of this.answers) {
      if (!this.lists[list].containsDomain(name)) continue;
      for (const [ip, exp] of m) {
        if (exp <= now || (list === 'block' && this.spared(ip, name))) continue;
        keep.set(ip, Math.max(exp, keep.get(ip) ?? 0));
        rows.push([name, ip, exp]);
      }
    }
    const cur = this.nameAddrs[list];
    for (const ip of [...cur.keys()]) if (!keep.has(ip)) cur.delete(ip);
    return rows;
  }

  /** Forgets answers and name addresses expired by `now`. */
  expire(now: number): void {
    for (const [k, m] of this.answers) {
      for (const [ip, exp] of m) if (exp <= now) m.delete(ip);
      if (m.size === 0) this.answers.delete(k);
    }
    for (const m of Object.values(this.nameAddrs)) for (const [ip, exp] of m) if (exp <= now) m.delete(ip);
  }
}
