/**
 * Reading a flow with `for await`: records queue for the reader up to `capacity`; a reader that falls behind
 * loses the oldest (told through `onLoss`), never slows the flow or its other subscribers. And the count of
 * what a reader lost, reported in batches. Local and remote handles share both.
 */
import type { Observable } from 'rxjs';
import { Ring } from '../util/ring.js';

export async function* iterateRecords<R>(
  records$: Observable<R>,
  capacity: number,
  onLoss: (n: number) => void,
): AsyncGenerator<R> {
  // A ring: an array's shift() is linear once it is long, and a reader far behind on a large buffer took
  // seconds per 50 000 records (every arrival dropped the oldest).
  const q = new Ring<R>();
  let wake: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  const sub = records$.subscribe({
    next: (r) => {
      if (q.pushDropOldest(r, capacity)) onLoss(1);
      wake?.();
    },
    error: (e) => {
      failure = e;
      done = true;
      wake?.();
    },
    complete: () => {
      done = true;
      wake?.();
    },
  });
  try {
    for (;;) {
      if (q.length) yield q.shift() as R;
      else if (done) break;
      else await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    if (failure) throw failure;
  } finally {
    sub.unsubscribe();
  }
}

/** How often at most a flow reports what its reader lost. */
export const READER_LOSS_EVERY_MS = 1000;

/**
 * What a flow's reader lost: every record counted in `total` at once, reported through `report` at most once
 * per READER_LOSS_EVERY_MS with the exact count since the last report, and by flush() (a closing flow).
 */
export class ReaderLoss {
  /** Every record lost so far, reported or about to be. */
  total = 0;
  private pending = 0;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(private readonly report: (count: number) => void) {}

  add(n: number): void {
    this.total += n;
    this.pending += n;
    // Unref'd: a report due does not keep the process alive (a flow closing flushes it).
    this.timer ??= setTimeout(() => this.flush(), READER_LOSS_EVERY_MS).unref();
  }

  /** Counts `n` lost that were reported by other means (a daemon's notice): in the total, not reported again. */
  tally(n: number): void {
    this.total += n;
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === 0) return;
    const count = this.pending;
    this.pending = 0;
    this.report(count);
  }
}
