import { AgedMap } from '../../util/aged-map.js';

/** Matches responses to the queries they answer (id, client, server) to give each response its round-trip time. */
export class QueryMatcher {
  /** Oldest first: queries arrive in time order, so pruning stops at the first young one. */
  private readonly pending = new AgedMap<string, number>();

  constructor(
    private readonly maxPending = 65536,
    private readonly maxAgeMs = 30_000,
  ) {}

  private static key(client: string, clientPort: number, server: string, id: number): string {
    return `${client}|${clientPort}|${server}|${id}`;
  }

  query(client: string, clientPort: number, server: string, id: number, ts: number): void {
    if (this.pending.size >= this.maxPending) this.prune(ts, true);
    this.pending.renew(QueryMatcher.key(client, clientPort, server, id), ts);
  }

  /** The rtt in ms when the query was seen, else undefined. Each query matches once. */
  response(client: string, clientPort: number, server: string, id: number, ts: number): number | undefined {
    const k = QueryMatcher.key(client, clientPort, server, id);
    const t = this.pending.get(k);
    if (t === undefined) return undefined;
    this.pending.delete(k);
    return Math.max(0, ts - t);
  }

  /**
   * Forgets queries older than maxAgeMs; when `force` (full), the oldest too until there is room for one more.
   * Each forgotten query costs O(1): a full matcher no longer scans all its queries on every new one.
   */
  prune(now: number, force = false): void {
    // A query further ahead than maxAgeMs is from before the clock stepped back: it goes too, or it would hold
    // every query behind it.
    const stale = (t: number) => Math.abs(now - t) > this.maxAgeMs;
    for (let t = this.pending.oldest(); t !== undefined && stale(t); t = this.pending.oldest()) this.pending.shift();
    if (force) while (this.pending.size > 0 && this.pending.size >= this.maxPending) this.pending.shift();
  }

  get size(): number {
    return this.pending.size;
  }
}
