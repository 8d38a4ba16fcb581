/** Hostile-input property for the netlink decoders: truncated, corrupted and random bytes. */
import fc from 'fast-check';
import { expect } from 'vitest';
import { DecodeError } from '../../src/errors.js';

/**
 * Feeds `decode` 1000 variants of the golden message `base` (cut short,
 * one byte changed) and random bytes: whatever it throws must be a
 * DecodeError. `also` runs on every variant too (what must never throw at all).
 */
export function onlyDecodeErrors(base: Buffer, decode: (b: Buffer) => unknown, also?: (b: Buffer) => void): void {
  fc.assert(
    fc.property(
      fc.nat(base.length),
      fc.nat(base.length - 1),
      fc.integer({ min: 0, max: 255 }),
      fc.uint8Array({ maxLength: 120 }),
      (cut, at, v, rnd) => {
        const flipped = Buffer.from(base);
        flipped[at] = v;
        for (const b of [base.subarray(0, cut), flipped, Buffer.from(rnd)]) {
          try {
            decode(b);
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
          }
          also?.(b);
        }
      },
    ),
    { numRuns: 1000 },
  );
}
