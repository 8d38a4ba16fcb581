/**
 * The bounded buffer between a flow's (possibly shared) pipeline and its
 * subscribers (FFPF's slow/fast readers): the pipeline never waits; records
 * are delivered in batches on later turns of the event loop, so a slow
 * subscriber holds up only its own flow. When the buffer is full, the
 * oldest or the newest record is dropped, and every drop is counted.
 */
import { Fanout } from '../sources/fanout.js';

/** What a full flow buffer drops: the oldest buffered record or the newest arrival. */
export type OverflowPolicy = 'drop-oldest' | 'drop-newest';

export interface BufferStats {
  buffered: number;
  highWater: number;
  dropped: number;
  delivered: number;
}

const BATCH = 1024;
/** The ring's first length, and the most an empty one keeps (a power of two each). */
const MIN_RING = 16;
const SHRINK_ABOVE = 4096;

export class FlowBuffer<T> {
  /** To the subscribers: a Fanout, not a Subject, whose next allocates per record per flow (fanout.ts). */
  readonly out = new Fanout<T>();
  /** What the flow's subscribers see. */
  readonly records$ = this.out.asObservable();
  /**
   * A ring of records, its length a power of two: grown (doubled, up to the capacity) when full, back to its
   * first size when a drain leaves it empty after a burst. No allocation per record, unlike a growing array.
   */
  private ring: (T | undefined)[] = new Array(MIN_RING);
  /** Records taken (head) and put (tail) so far: the ring holds tail − head of them, at index & (length − 1). */
  private head = 0;
  private tail = 0;
  private scheduled = false;
  /** Held: records are kept (bounded as ever) but not delivered until release(). */
  private held = false;
  private endPending = false;
  readonly stats: BufferStats = { buffered: 0, highWater: 0, dropped: 0, delivered: 0 };
  private readonly drainSoon = () => this.drain();

  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy,
    private readonly onDrop: (n: number) => void,
  ) {}

  push(r: T): void {
    let n = this.tail - this.head;
    if (n >= this.capacity) {
      this.stats.dropped++;
      this.onDrop(1);
      if (this.policy === 'drop-newest') return;
      this.ring[this.head++ & (this.ring.length - 1)] = undefined;
      n--;
    }
    if (n === this.ring.length) this.grow();
    this.ring[this.tail++ & (this.ring.length - 1)] = r;
    n++;
    if (n > this.stats.highWater) this.stats.highWater = n;
    this.stats.buffered = n;
    if (!this.scheduled && !this.held) {
      this.scheduled = true;
      setImmediate(this.drainSoon);
    }
  }

  /** Twice the room, the records in order from index 0. */
  private grow(): void {
    const old = this.ring;
    const n = this.tail - this.head;
    const ring: (T | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < n; i++) ring[i] = old[(this.head + i) & (old.length - 1)];
    this.ring = ring;
    this.head = 0;
    this.tail = n;
  }

  private drain(): void {
    this.scheduled = false;
    const end = Math.min(this.tail, this.head + BATCH);
    while (this.head < end) {
      const i = this.head++ & (this.ring.length - 1);
      const r = this.ring[i] as T;
      this.ring[i] = undefined;
      this.stats.delivered++;
      this.out.next(r);
    }
    this.stats.buffered = this.tail - this.head;
    if (this.stats.buffered === 0) {
      // Empty: indices from 0 again (they stay small), and a ring a burst grew is let go.
      this.head = this.tail = 0;
      if (this.ring.length > SHRINK_ABOVE) this.ring = new Array(MIN_RING);
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drainSoon);
    }
  }

  /** Keeps what is pushed from now on until release(). */
  hold(): void {
    this.held = true;
  }

  /** Delivers what was held (and completes, when the pipeline ended meanwhile). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.endPending) {
      this.end();
      return;
    }
    if (this.tail > this.head && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drainSoon);
    }
  }

  /** Delivers what is buffered, then completes. */
  end(): void {
    if (this.held) {
      this.endPending = true;
      return;
    }
    this.drain();
    if (this.stats.buffered > 0) {
      setImmediate(() => this.end());
      return;
    }
    this.out.complete();
  }

  /** Delivers everything buffered now, synchronously (a closing flow's last records). */
  deliverNow(): void {
    if (this.held) return;
    while (this.tail > this.head) this.drain();
  }

  clear(): void {
    this.ring = new Array(MIN_RING);
    this.head = this.tail = 0;
    this.stats.buffered = 0;
  }
}
