/**
 * Steps that are a pure test (keep or drop) or a pure map (one record in, one
 * out) say so by carrying `test` or `map`: the flow runtime then fuses them
 * into one generated function instead of calling them through an emit
 * callback. Called directly, they behave like any other step.
 */
import type { Rec, StepFn } from '../registry.js';

export interface PureStep extends StepFn {
  test?: (r: Rec) => boolean;
  map?: (r: Rec) => Rec;
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
