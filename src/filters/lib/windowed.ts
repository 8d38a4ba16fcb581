/**
 * Tumbling time windows on the context's scheduler (a TestScheduler in
 * marble tests): records are folded into per-window state, and at each
 * boundary the state is turned into output records. The last partial
 * window is flushed when the input completes.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { BuildContext, Rec } from '../registry.js';

export interface WindowFold<S> {
  init(): S;
  add(state: S, r: Rec): void;
  /** Output records for a window [start, end). */
  emit(state: S, start: number, end: number): Rec[];
}

export function windowed<S>(every: number, ctx: BuildContext, fold: WindowFold<S>): OperatorFunction<Rec, Rec> {
  return (source) =>
    new Observable<Rec>((sub) => {
      let state = fold.init();
      let start = ctx.scheduler.now();
      const flush = () => {
        const end = ctx.scheduler.now();
        const out = fold.emit(state, start, end);
        state = fold.init();
        start = end;
        for (const r of out) sub.next(r);
      };
      const tick = ctx.scheduler.schedule(function again() {
        flush();
        this.schedule(undefined, every);
      }, every);
      const inner = source.subscribe({
        next: (r) => fold.add(state, r),
        error: (e) => sub.error(e),
        complete: () => {
          flush();
          sub.complete();
        },
      });
      return () => {
        tick.unsubscribe();
        inner.unsubscribe();
      };
    });
}
