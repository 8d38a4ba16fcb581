/**
 * DnsCache: address → the names that resolved to it, each until its TTL runs
 * out. Local zones often answer with TTL 0: such names are kept for at least
 * `minTtlS`, so a flow that starts right after the lookup still gets a name.
 *
 * Any LAN host chooses the names it asks for and, asking a server of its own,
 * the answers, so what the cache takes is bounded on every side:
 * - only responses that answer a query the dns source saw (the record has an
 *   `rtt`): any host can send a response nobody asked for;
 * - only answers of this machine's own resolver traffic (hooks input and
 *   output: the router answering devices, its upstream answering it, a host's
 *   own lookups), or of a server named in `trustedServers`: an answer a device
 *   got by asking its own server directly (forward) would name any address
 *   (bank.example → the attacker's server);
 * - TTLs are capped at `maxTtlS` (a day, as Unbound's cache-max-ttl);
 * - an address keeps at most MAX_NAMES_PER_IP names (the ones expiring last):
 *   a wildcard domain made one address carry 20 000 names, 12 ms and 1.7 MB
 *   of JSON per enriched record;
 * - the client that asked holds at most a tenth of `maxEntries`: past it its
 *   new names are not learnt (until some of its own expire), so one host
 *   cannot push everyone else's names out.
 */
import { canonicalIP } from '../../netlink/ip.js';
import type { DnsRecord } from './record.js';

/** Options of a DnsCache: minimum TTL, size bound, whose answers it trusts, clock. */
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
  /**
   * DNS servers whose answers passing through (hook forward: a device asking them directly) are learnt too,
   * in any spelling of their address. Answers of this machine's own resolver traffic always are.
   */
  trustedServers?: string[];
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** Seconds a DNS answer ties a name to an address at most by default (Unbound's cache-max-ttl). */
export const DNS_MAX_TTL_S = 86_400;
/**
 * Whether a response may say what a name resolves to: one of this machine's own resolver traffic (hooks input
 * and output: a router answering devices, its upstream answering it, a host's own lookups) or from one of
 * `servers` (canonical addresses, as records write them). A device may ask any server directly (forward), its
 * own included, and would then name any address as it likes.
 */
export function answerTrusted(r: Pick<DnsRecord, 'hook' | 'server'>, servers: ReadonlySet<string>): boolean {
  return r.hook === 'input' || r.hook === 'output' || servers.has(r.server);
}

/** Names one address keeps: a CDN's address serves a few; a wildcard domain's, any number. */
export const MAX_NAMES_PER_IP = 16;

interface Entry {
  /** ms since the epoch. */
  expires: number;
  /** The client whose query taught it ('' for set() without one: no share applies). */
  client: string;
}

/** Address → names learnt from DNS answers, each kept for its TTL (at least minTtlS) and bounded in size; what enrich() reads. */
export class DnsCache {
  /** ip → (name → entry). */
  private readonly byIp = new Map<string, Map<string, Entry>>();
  /** Entries each client taught. */
  private readonly byClient = new Map<string, number>();
  private count = 0;
  /** When freedFor() last swept the cache. */
  private prunedAt = Number.NEGATIVE_INFINITY;
  private readonly minTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly maxEntries: number;
  private readonly perClient: number;
  private readonly unsolicited: boolean;
  private readonly trustedServers: Set<string>;
  private readonly now: () => number;
  /** Names not learnt because their client held its share, or their answer was not trusted. */
  readonly refused = { overShare: 0, untrusted: 0 };

  constructor(opts: DnsCacheOptions = {}) {
    this.minTtlMs = (opts.minTtlS ?? 300) * 1000;
    this.maxTtlMs = Math.max(this.minTtlMs, (opts.maxTtlS ?? DNS_MAX_TTL_S) * 1000);
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.perClient = Math.max(1, Math.floor(this.maxEntries / 10));
    this.unsolicited = opts.unsolicited ?? false;
    // As the records write addresses (canonical): '2001:DB8::53' is '2001:db8::53'.
    this.trustedServers = new Set((opts.trustedServers ?? []).map((a) => canonicalIP(a) ?? a));
    this.now = opts.now ?? Date.now;
  }

  /**
   * Learns every resolved address of a response record that answers a query seen (`rtt` set; see
   * `unsolicited`) on this machine's own resolver traffic or from a trusted server. Queries, errors and
   * other responses are ignored.
   */
  add(r: DnsRecord): void {
    if (r.kind !== 'response' || r.error) return;
    if (r.rtt === undefined && !this.unsolicited) return;
    if (!answerTrusted(r, this.trustedServers)) {
      this.refused.untrusted++;
      return;
    }
    for (const res of r.resolved) this.set(res.ip, res.name, res.ttl, r.client);
  }

  /**
   * Remembers that `ip` is `name` for `ttlS` seconds, kept within [minTtlS, maxTtlS], taught by `client`; past
   * maxEntries the soonest to expire goes.
   */
  set(ip: string, name: string, ttlS: number, client = ''): void {
    const ttlMs = Number.isFinite(ttlS) ? ttlS * 1000 : 0;
    const expires = this.now() + Math.min(Math.max(ttlMs, this.minTtlMs), this.maxTtlMs);
    const key = name.toLowerCase().replace(/\.$/, '');
    let names = this.byIp.get(ip);
    const had = names?.get(key);
    if (had) {
      had.expires = Math.max(had.expires, expires);
      return;
    }
    if (client !== '' && (this.byClient.get(client) ?? 0) >= this.perClient && !this.freedFor(client)) {
      this.refused.overShare++;
      return;
    }
    if (!names) {
      names = new Map();
      this.byIp.set(ip, names);
    } else if (names.size >= MAX_NAMES_PER_IP) {
      // Full: the name expiring first makes room, unless the new one expires sooner still.
      let first: [string, Entry] | undefined;
      for (const e of names) if (!first || e[1].expires < first[1].expires) first = e;
      if (first && first[1].expires >= expires) return;
      if (first) this.drop(names, first[0], first[1]);
    }
    names.set(key, { expires, client });
    this.byClient.set(client, (this.byClient.get(client) ?? 0) + 1);
    this.count++;
    if (this.count > this.maxEntries) this.evict();
  }

  /** Names of `ip` that have not expired, most recently valid first. */
  names(ip: string): string[] {
    const names = this.byIp.get(ip);
    if (!names) return [];
    const now = this.now();
    const live: [string, number][] = [];
    for (const [n, e] of names) {
      if (e.expires > now) live.push([n, e.expires]);
      else this.drop(names, n, e);
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

  /**
   * A client at its share: its names that expired are let go first (a sweep of the cache at most once a second):
   * on a host whose lookups all come from one client, nothing else ever would, and it stopped learning for good.
   * True when that made room.
   */
  private freedFor(client: string): boolean {
    const now = this.now();
    if (now - this.prunedAt < 1000) return false;
    this.prunedAt = now;
    this.prune();
    return (this.byClient.get(client) ?? 0) < this.perClient;
  }

  /** One entry out, from its client's count too. */
  private drop(names: Map<string, Entry>, name: string, e: Entry): void {
    names.delete(name);
    this.count--;
    const n = (this.byClient.get(e.client) ?? 1) - 1;
    if (n > 0) this.byClient.set(e.client, n);
    else this.byClient.delete(e.client);
  }

  /** Makes room in one sweep, down to 90 % whatever the expired ones freed: one scan per many inserts. */
  private evict(): void {
    this.prune();
    const target = Math.floor(this.maxEntries * 0.9);
    if (this.count <= target) return;
    const all: [string, string, Entry][] = [];
    for (const [ip, names] of this.byIp) for (const [n, e] of names) all.push([ip, n, e]);
    all.sort((a, b) => a[2].expires - b[2].expires);
    for (const [ip, n, e] of all.slice(0, this.count - target)) {
      const names = this.byIp.get(ip)!;
      this.drop(names, n, e);
      if (names.size === 0) this.byIp.delete(ip);
    }
  }
}
