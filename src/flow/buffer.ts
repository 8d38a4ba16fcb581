/**
 * The bounded buffer between a flow's (possibly shared) pipeline and its
 * subscribers (FFPF's slow/fast readers): the pipeline never waits; records
 * are delivered in batches on later turns of the event loop, so a slow
 * subscriber holds up only its own flow. When the buffer is full, the
 * oldest or the newest record is dropped, and every drop is counted.
 */
import { Fanout } from '../sources/fanout.js';
import { Ring } from '../util/ring.js';

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
  /** To the subscribers: a Fanout, not a Subject, whose next allocates per record per flow (fanout.ts). */
  readonly out = new Fanout<T>();
  /** What the flow's subscribers see. */
  readonly records$ = this.out.asObservable();
  /** The records waiting (grown up to the capacity, let go when a drain empties it): no allocation per record. */
  private readonly ring = new Ring<T>();
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
    const ring = this.ring;
    if (ring.length >= this.capacity) {
      this.stats.dropped++;
      this.onDrop(1);
      if (this.policy === 'drop-newest') return;
      ring.shift();
    }
    ring.push(r);
    const n = ring.length;
    if (n > this.stats.highWater) this.stats.highWater = n;
    this.stats.buffered = n;
    if (!this.scheduled && !this.held) {
      this.scheduled = true;
      setImmediate(this.drainSoon);
    }
  }

  private drain(): void {
    this.scheduled = false;
    const ring = this.ring;
    // A subscriber may close the flow (clear) mid-batch: what is gone then is not delivered.
    for (let k = Math.min(ring.length, BATCH); k > 0 && ring.length > 0; k--) {
      const r = ring.shift() as T;
      this.stats.delivered++;
      this.out.next(r);
    }
    this.stats.buffered = ring.length;
    if (this.stats.buffered > 0 && !this.scheduled) {
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
    if (this.ring.length > 0 && !this.scheduled) {
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
    while (this.ring.length > 0) this.drain();
  }

  clear(): void {
    this.ring.clear();
    this.stats.buffered = 0;
  }
}
