/** What every sink offers: write records, flush, close, and counters. */

/** Counters every sink keeps (records unless said otherwise). */
export interface SinkStats {
  /** Records given to `write`. */
  received: number;
  /** Records delivered: datagrams sent, bytes written, messages published. For IPFIX/NetFlow v9, data records. */
  sent: number;
  /** Records that could not be delivered: collector or broker away, queue full. Counted, never silent. */
  dropped: number;
  /** Records the sink cannot express (not a flow, a bad address); `lastError` says why. */
  rejected: number;
  /** Messages (datagrams, MQTT publishes, files) written. */
  messages: number;
  /** Messages that carried templates (IPFIX / NetFlow v9). */
  templates: number;
  /** Records waiting (reconnect queue). */
  queued: number;
  /** Send or write errors (the sink retries or drops; see `lastError`). */
  errors: number;
  /** The latest error or rejection reason. */
  lastError?: string;
}

/** Where exported records go: IPFIX, NetFlow v9, NDJSON, MQTT or NATS. */
export interface FlowSink {
  /** `ipfix`, `netflow9`, `ndjson` or `mqtt`. */
  readonly kind: string;
  /** Never throws for a bad record: it is counted in `rejected` (the next ones still go out). */
  write(record: unknown): void;
  /** Resolves once everything written so far has been handed to the network or the file. */
  flush(): Promise<void>;
  /** Flushes, then releases sockets and files; idempotent. */
  close(): Promise<void>;
  /** Counters so far. */
  stats(): SinkStats;
}

export function emptyStats(): SinkStats {
  return { received: 0, sent: 0, dropped: 0, rejected: 0, messages: 0, templates: 0, queued: 0, errors: 0 };
}
