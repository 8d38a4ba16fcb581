/**
 * DnsCache: address → the names that resolved to it, each until its TTL runs
 * out. Local zones often answer with TTL 0: such names are kept for at least
 * `minTtlS`, so a flow that starts right after the lookup still gets a name.
 *
 * It learns only from responses that answer a query the dns source saw (the
 * record has an `rtt`): any LAN host can send a response nobody asked for,
 * and would otherwise name any address as it likes (bank.example → its own
 * server) for as long as it likes. TTLs are capped at `maxTtlS` (a day, as
 * Unbound's cache-max-ttl), as resolvers cap them.
 */
import type { DnsRecord } from './record.js';

/** Options of a DnsCache: minimum TTL, size bound, clock. */
export interface DnsCacheOptions {
  /** Seconds every name is kept at least (default 300). */
  minTtlS?: number;
  /** Seconds a name is kept at most, whatever TTL its answer gave (default 86 400). */
  maxTtlS?: number;
  /** Entries at most; the soonest to expire go first (default 100 000). */
  maxEntries?: number;
  /**
   * Learn from responses without a query seen for them too (default false). Only for a capture that cannot
   * see the queries (e.g. rules you installed on the answers' path alone): then any host that can send a DNS
   * response through those rules names addresses.
   */
  unsolicited?: boolean;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** Seconds a DNS answer ties a name to an address at most by default (Unbound's cache-max-ttl). */
export const DNS_MAX_TTL_S = 86_400;

/** Address → names learnt from DNS answers, each kept for its TTL (at least minTtlS) and bounded in size; what enrich() reads. */
export class DnsCache {
  /** ip → (name → expiry in ms). */
  private readonly byIp = new Map<string, Map<string, number>>();
  private count = 0;
  private readonly minTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly maxEntries: number;
  private readonly unsolicited: boolean;
  private readonly now: () => number;

  constructor(opts: DnsCacheOptions = {}) {
    this.minTtlMs = (opts.minTtlS ?? 300) * 1000;
    this.maxTtlMs = Math.max(this.minTtlMs, (opts.maxTtlS ?? DNS_MAX_TTL_S) * 1000);
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.unsolicited = opts.unsolicited ?? false;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Learns every resolved address of a response record that answers a query seen (`rtt` set; see
   * `unsolicited`). Queries, errors and unsolicited responses are ignored.
   */
  add(r: DnsRecord): void {
    if (r.kind !== 'response' || r.error) return;
    if (r.rtt === undefined && !this.unsolicited) return;
    for (const res of r.resolved) this.set(res.ip, res.name, res.ttl);
  }

  /**
   * Remembers that `ip` is `name` for `ttlS` seconds, kept within [minTtlS, maxTtlS]; past maxEntries the
   * soonest to expire goes.
   */
  set(ip: string, name: string, ttlS: number): void {
    const ttlMs = Number.isFinite(ttlS) ? ttlS * 1000 : 0;
    const expires = this.now() + Math.min(Math.max(ttlMs, this.minTtlMs), this.maxTtlMs);
    let names = this.byIp.get(ip);
    if (!names) {
      names = new Map();
      this.byIp.set(ip, names);
    }
    const key = name.toLowerCase().replace(/\.$/, '');
    if (!names.has(key)) this.count++;
    names.set(key, Math.max(expires, names.get(key) ?? 0));
    if (this.count > this.maxEntries) this.evict();
  }

  /** Names of `ip` that have not expired, most recently valid first. */
  names(ip: string): string[] {
    const names = this.byIp.get(ip);
    if (!names) return [];
    const now = this.now();
    const live: [string, number][] = [];
    for (const [n, exp] of names) {
      if (exp > now) live.push([n, exp]);
      else {
        names.delete(n);
        this.count--;
      }
    }
    if (names.size === 0) this.byIp.delete(ip);
    return live.sort((a, b) => b[1] - a[1]).map(([n]) => n);
  }

  /** Drops everything expired; returns how many entries went. */
  prune(): number {
    const before = this.count;
    for (const ip of [...this.byIp.keys()]) this.names(ip);
    return before - this.count;
  }

  get size(): number {
    return this.count;
  }

  /** Makes room in one sweep (down to 90 %), so a full cache costs one scan per many inserts. */
  private evict(): void {
    this.prune();
    const target = Math.floor(this.maxEntries * 0.9);
    if (this.count <= this.maxEntries) return;
    const all: [string, string, number][] = [];
    for (const [ip, names] of this.byIp) for (const [n, exp] of names) all.push([ip, n, exp]);
    all.sort((a, b) => a[2] - b[2]);
    for (const [ip, n] of all.slice(0, this.count - target)) {
      const names = this.byIp.get(ip)!;
      names.delete(n);
      if (names.size === 0) this.byIp.delete(ip);
      this.count--;
    }
  }
}
