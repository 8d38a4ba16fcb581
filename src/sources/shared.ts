/**
 * Reference-counted sharing of one resource per key (STYLE.md §7): the same
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
