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
  /** IPFIX / NetFlow v9: the largest message in bytes (the option, or what the path MTU allows). */
  messageBytes?: number;
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

/** Counts a failure in `st` and keeps its message, prefixed with what failed (`mqtt`, `publish`). */
export function countError(st: SinkStats, what: string, err: unknown): void {
  st.errors++;
  st.lastError = `${what}: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * The common start of a sink's `write`: counts the record as received; a
 * closed sink drops it, a record `serialise` throws on or turns into no
 * string is rejected (both counted, with `lastError`). Returns the text to
 * deliver, or undefined when the record stops here.
 */
export function admitRecord(
  st: SinkStats,
  closed: boolean,
  record: unknown,
  serialise: (r: unknown) => unknown = JSON.stringify,
): string | undefined {
  st.received++;
  if (closed) {
    st.dropped++;
    st.lastError = 'sink closed';
    return undefined;
  }
  let text: unknown;
  try {
    text = serialise(record);
  } catch (err) {
    st.rejected++;
    st.lastError = `not serialisable: ${(err as Error).message}`;
    return undefined;
  }
  if (typeof text !== 'string') {
    st.rejected++;
    st.lastError = 'not serialisable';
    return undefined;
  }
  return text;
}
