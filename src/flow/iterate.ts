/**
 * Reading a flow with `for await`: records queue for the reader up to `capacity`; a reader that falls behind
 * loses the oldest (told through `onLoss`), never slows the flow or its other subscribers. Local and remote
 * handles share it.
 */
import type { Observable } from 'rxjs';

export async function* iterateRecords<R>(
  records$: Observable<R>,
  capacity: number,
  onLoss: (n: number) => void,
): AsyncGenerator<R> {
  const q: R[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  const sub = records$.subscribe({
    next: (r) => {
      if (q.length >= capacity) {
        q.shift();
        onLoss(1);
      }
      q.push(r);
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
      if (q.length) yield q.shift()!;
      else if (done) break;
      else await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    if (failure) throw failure;
  } finally {
    sub.unsubscribe();
  }
}
