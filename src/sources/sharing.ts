/**
 * Reference-counted sharing of one resource per key (docs/architecture.md#stream-resources): the same
 * source config opened twice in one process uses one kernel socket.
 */
export interface Lease<T> {
  readonly value: T;
  release(): void;
}

export class SharedRegistry<T> {
  private readonly entries = new Map<string, { value: T; refs: number }>();

  constructor(private readonly dispose: (value: T, key: string) => void) {}

  acquire(key: string, open: () => T): Lease<T> {
    let e = this.entries.get(key);
    if (!e) {
      e = { value: open(), refs: 0 };
      this.entries.set(key, e);
    }
    e.refs++;
    const entry = e;
    let released = false;
    return {
      value: entry.value,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.refs > 0) return;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        this.dispose(entry.value, key);
      },
    };
  }

  /** How many subscribers share `key` (0 when not open). */
  refs(key: string): number {
    return this.entries.get(key)?.refs ?? 0;
  }

  get size(): number {
    return this.entries.size;
  }
}

// Feeds are shared per kernel too: two transports (two fake kernels in tests) never share one.
const transportIds = new WeakMap<object, number>();
let nextTransportId = 0;

/** A short id for a transport factory, to put in shared-feed keys. */
export function transportKey(t: object): number {
  let id = transportIds.get(t);
  if (id === undefined) transportIds.set(t, (id = nextTransportId++));
  return id;
}
