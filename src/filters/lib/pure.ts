/**
 * Steps that are a pure test (keep or drop) or a pure map (one record in, one
 * out) say so by carrying `test` or `map`: the flow runtime then fuses them
 * into one generated function instead of calling them through an emit
 * callback. Called directly, they behave like any other step.
 */
import type { Rec, StepFn, Stepper } from '../registry.js';

export interface PureStep extends StepFn {
  test?: (r: Rec) => boolean;
  map?: (r: Rec) => Rec;
  /**
   * Paths whose values a map's output carries at the same paths as its input (a projection's): a borrower that
   * reads only values at or under them reads the same from the input record, and the map can be skipped for it.
   */
  kept?: string[];
}

/**
 * Steppers that only read a record while called and keep nothing of it
 * (count/sum/top copy what they keep), with the paths they read (every one,
 * `ts` included).
 */
export const borrowers = new WeakMap<Stepper, readonly string[]>();

/** True when every path of `reads` is one of `kept` or under one of them. */
export function readsWithin(reads: readonly string[], kept: readonly string[]): boolean {
  return reads.every((p) => kept.some((k) => p === k || p.startsWith(`${k}.`)));
}

export function testStep(test: (r: Rec) => boolean): PureStep {
  const step: PureStep = (r, emit) => {
    if (test(r)) emit(r);
  };
  step.test = test;
  return step;
}

export function mapStep(map: (r: Rec) => Rec): PureStep {
  const step: PureStep = (r, emit) => emit(map(r));
  step.map = map;
  return step;
}
