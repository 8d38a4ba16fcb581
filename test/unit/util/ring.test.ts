import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ring } from '../../../src/util/ring.js';

type Op = { push: number } | 'shift' | 'clear';

describe('Ring', () => {
  it('behaves as an array used first-in first-out, through growing, wrapping, emptying and clearing', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.integer().map((push) => ({ push })) },
      { weight: 4, arbitrary: fc.constant('shift' as const) },
      { weight: 1, arbitrary: fc.constant('clear' as const) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const ring = new Ring<number>();
        const model: number[] = [];
        for (const o of ops) {
          if (o === 'shift') expect(ring.shift()).toBe(model.shift());
          else if (o === 'clear') {
            ring.clear();
            model.length = 0;
          } else {
            ring.push(o.push);
            model.push(o.push);
          }
          expect(ring.length).toBe(model.length);
        }
        const rest: number[] = [];
        while (ring.length > 0) rest.push(ring.shift() as number);
        expect(rest).toEqual(model);
        expect(ring.shift()).toBeUndefined();
      }),
    );
  });

  it('keeps order across a burst far past its first size, then starts small again', () => {
    const ring = new Ring<number>();
    for (let round = 0; round < 2; round++) {
      // Half taken out as it fills: the live part wraps round the end of the slots many times.
      for (let i = 0; i < 50_000; i++) {
        ring.push(i);
        if (i % 2 === 1) ring.shift();
      }
      expect(ring.length).toBe(25_000);
      const out: number[] = [];
      while (ring.length > 0) out.push(ring.shift() as number);
      expect(out).toEqual(Array.from({ length: 25_000 }, (_, i) => 25_000 + i));
    }
  });
});
