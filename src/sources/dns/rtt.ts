/** Matches responses to the queries they answer (id, client, server) to give each response its round-trip time. */
export class QueryMatcher {
  private readonly pending = new Map<string, number>();

  constructor(
    private readonly maxPending = 65536,
    private readonly maxAgeMs = 30_000,
  ) {}

  private static key(client: string, clientPort: number, server: string, id: number): string {
    return `${client}|${clientPort}|${server}|${id}`;
  }

  query(client: string, clientPort: number, server: string, id: number, ts: number): void {
    if (this.pending.size >= this.maxPending) this.prune(ts, true);
    this.pending.set(QueryMatcher.key(client, clientPort, server, id), ts);
  }

  /** The rtt in ms when the query was seen, else undefined. Each query matches once. */
  response(client: string, clientPort: number, server: string, id: number, ts: number): number | undefined {
    const k = QueryMatcher.key(client, clientPort, server, id);
    const t = this.pending.get(k);
    if (t === undefined) return undefined;
    this.pending.delete(k);
    return Math.max(0, ts - t);
  }

  /** Forgets queries older than maxAgeMs (all but the newest half when `force`). */
  prune(now: number, force = false): void {
    for (const [k, t] of this.pending) if (now - t > this.maxAgeMs) this.pending.delete(k);
    if (force && this.pending.size >= this.maxPending) {
      let drop = this.pending.size >> 1;
      for (const k of this.pending.keys()) {
        if (drop-- <= 0) break;
        this.pending.delete(k);
      }
    }
  }

  get size(): number {
    return this.pending.size;
  }
}
