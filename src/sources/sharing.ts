/**
 * Reference-counted sharing of one resource per key: the same source
 * config opened twice in one process uses one kernel socket.
 */
import { FlowgrabError } from '../errors.js';

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

/** How a source's feeds are shared: which options make a feed, and which kernel resource only one may hold. */
export interface FeedSharing<C extends object, T> {
  /** The source's name, for errors ("dns"). */
  readonly what: string;
  /** Options each subscriber applies itself (a dump, sysctl fixes): they never decide the feed. */
  readonly perSubscriber?: readonly (keyof C)[];
  /** List options whose order means nothing (event names, hooks): compared as sets. */
  readonly sets?: readonly (keyof C)[];
  /**
   * Names the kernel resource a feed holds alone (an NFLOG group, an NFQUEUE queue, in one netns).
   * Without it feeds are plain listeners: each distinct config gets its own. With it, one config
   * per resource: another config for it is an FG_ERR_BUSY error, never silently the first one's.
   */
  readonly exclusive?: (c: C) => string;
  /** Opens the feed for `c`; `key` is the one it is registered under (and later disposed with). */
  open(c: C, transport: object, key: string): T;
  dispose(feed: T, key: string): void;
}

/** The config as one canonical string: keys sorted, set-like lists sorted, per-subscriber options left out. */
function canonical<C extends object>(c: C, s: Pick<FeedSharing<C, unknown>, 'perSubscriber' | 'sets'>): string {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(c).sort() as (keyof C & string)[]) {
    const v = c[k];
    if (v === undefined || s.perSubscriber?.includes(k)) continue;
    out[k] = Array.isArray(v) && s.sets?.includes(k) ? [...v].sort() : v;
  }
  return JSON.stringify(out);
}

/** The options two canonical configs disagree on, as "name a ≠ b". */
function differences(a: string, b: string): string {
  const x = JSON.parse(a) as Record<string, unknown>;
  const y = JSON.parse(b) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].sort();
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  return keys
    .filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]))
    .map((k) => `${k} ${show(x[k])} ≠ ${show(y[k])}`)
    .join(', ');
}

/**
 * The one way sources share feeds: the same config (whole, but for what
 * each subscriber does itself) shares one feed; on an exclusive kernel
 * resource, another config is a clear error.
 */
export class SharedFeeds<C extends object, T> {
  private readonly registry: SharedRegistry<T>;
  /** Canonical config of each open key, to tell a conflicting subscriber apart. */
  private readonly configs = new Map<string, string>();
  /** The transport-free part of each open key, for refs() without a transport. */
  private readonly bare = new Map<string, string>();

  constructor(private readonly spec: FeedSharing<C, T>) {
    this.registry = new SharedRegistry<T>((feed, key) => {
      this.configs.delete(key);
      this.bare.delete(key);
      spec.dispose(feed, key);
    });
  }

  private bareKey(c: C): string {
    return this.spec.exclusive ? this.spec.exclusive(c) : canonical(c, this.spec);
  }

  /** The registry key for `c` on `transport` (feeds are per kernel: two fake kernels never share one). */
  key(c: C, transport: object): string {
    return `${this.bareKey(c)}#${transportKey(transport)}`;
  }

  /** Joins (or opens) the feed for `c`; throws FG_ERR_BUSY when its exclusive resource is open with other options. */
  acquire(c: C, transport: object): Lease<T> {
    const key = this.key(c, transport);
    const want = canonical(c, this.spec);
    const have = this.configs.get(key);
    if (have !== undefined && have !== want) {
      const what = this.spec.exclusive?.(c) ?? key;
      throw new FlowgrabError(
        'FG_ERR_BUSY',
        `${what} is already open in this process with other options: ${differences(have, want)}`,
        { op: this.spec.what },
      );
    }
    const lease = this.registry.acquire(key, () => {
      const feed = this.spec.open(c, transport, key);
      this.configs.set(key, want);
      this.bare.set(key, this.bareKey(c));
      return feed;
    });
    return lease;
  }

  /** Subscribers sharing the feed for `c` (on `transport`, or on any transport when not given). */
  refs(c: C, transport?: object): number {
    if (transport) return this.registry.refs(this.key(c, transport));
    const bare = this.bareKey(c);
    let n = 0;
    for (const [key, b] of this.bare) if (b === bare) n += this.registry.refs(key);
    return n;
  }
}
