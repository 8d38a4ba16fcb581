/**
 * Tumbling time windows on the context's scheduler (a TestScheduler in
 * marble tests): records are folded into per-window state, and at each
 * boundary the state becomes output records. The last partial window is
 * flushed when the input completes.
 */
import type { BuildContext, Rec, Stepper } from '../registry.js';

export interface WindowFold<S> {
  init(): S;
  add(state: S, r: Rec): void;
  /** Output records for a window [start, end). */
  emit(state: S, start: number, end: number): Rec[];
}

export function windowed<S>(every: number, ctx: BuildContext, fold: WindowFold<S>): Stepper {
  let state = fold.init();
  let start = ctx.scheduler.now();
  const flush = (emit: (r: Rec) => void) => {
    const end = ctx.scheduler.now();
    const out = fold.emit(state, start, end);
    state = fold.init();
    start = end;
    for (const r of out) emit(r);
  };
  return {
    push: (r) => fold.add(state, r),
    start: (emit) => {
      start = ctx.scheduler.now();
      const tick = ctx.scheduler.schedule(function again() {
        flush(emit);
        this.schedule(undefined, every);
      }, every);
      return () => tick.unsubscribe();
    },
    complete: (emit) => flush(emit),
  };
}
