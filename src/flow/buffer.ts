/**
 * The bounded buffer between a flow's (possibly shared) pipeline and its
 * subscribers (FFPF's slow/fast readers): the pipeline never waits; records
 * are delivered in batches on later turns of the event loop, so a slow
 * subscriber holds up only its own flow. When the buffer is full, the
 * oldest or the newest record is dropped, and every drop is counted.
 */
import { Subject } from 'rxjs';

/** What a full flow buffer drops: the oldest buffered record or the newest arrival. */
export type OverflowPolicy = 'drop-oldest' | 'drop-newest';

export interface BufferStats {
  buffered: number;
  highWater: number;
  dropped: number;
  delivered: number;
}

const BATCH = 1024;

export class FlowBuffer<T> {
  readonly out = new Subject<T>();
  private q: T[] = [];
  private head = 0;
  private scheduled = false;
  /** Held: records are kept (bounded as ever) but not delivered until release(). */
  private held = false;
  private endPending = false;
  readonly stats: BufferStats = { buffered: 0, highWater: 0, dropped: 0, delivered: 0 };

  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy,
    private readonly onDrop: (n: number) => void,
  ) {}

  push(r: T): void {
    if (this.q.length - this.head >= this.capacity) {
      this.stats.dropped++;
      this.onDrop(1);
      if (this.policy === 'drop-newest') return;
      this.head++;
    }
    this.q.push(r);
    const n = this.q.length - this.head;
    if (n > this.stats.highWater) this.stats.highWater = n;
    this.stats.buffered = n;
    if (!this.scheduled && !this.held) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const end = Math.min(this.q.length, this.head + BATCH);
    while (this.head < end) {
      const r = this.q[this.head];
      this.q[this.head++] = undefined as T;
      this.stats.delivered++;
      this.out.next(r);
    }
    if (this.head > 4096 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
    this.stats.buffered = this.q.length - this.head;
    if (this.stats.buffered > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
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
    if (this.q.length - this.head > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
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
    while (this.q.length - this.head > 0) this.drain();
  }

  clear(): void {
    this.q = [];
    this.head = 0;
    this.stats.buffered = 0;
  }
}
