import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { markArg } from '../../../src/cli/nfqueue.js';
import { formatMark, marksOverlap } from '../../../src/daemon/registration.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('queue marks', () => {
  it('two registrations overlap exactly when some mark matches both', () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, u32, (m1, k1, m2, k2, probe) => {
        const a = { mark: (m1 & k1) >>> 0, mask: k1 };
        const b = { mark: (m2 & k2) >>> 0, mask: k2 };
        const matches = (r: { mark: number; mask: number }, p: number) => (p & r.mask) >>> 0 === r.mark;
        // A mark matching both is built from a's bits where a cares and b's elsewhere: it exists iff they overlap.
        const witness = ((a.mark & a.mask) | (b.mark & ~a.mask)) >>> 0;
        expect(marksOverlap(a, b)).toBe(matches(a, witness) && matches(b, witness));
        if (matches(a, probe) && matches(b, probe)) expect(marksOverlap(a, b)).toBe(true);
      }),
    );
  });

  it('prints a full mask as the mark alone', () => {
    expect(formatMark(16, 0xffffffff)).toBe('0x10');
    expect(formatMark(2, 3)).toBe('0x2/0x3');
  });

  it('parses --mark MARK[/MASK] and refuses anything else', () => {
    expect(markArg('0x10')).toEqual({ mark: 16 });
    expect(markArg('2/0x3')).toEqual({ mark: 2, mask: 3 });
    for (const bad of ['', 'x', '-1', '0x100000000', '1/2/3', '1/', '1.5'])
      expect(() => markArg(bad), bad).toThrow(/--mark must be MARK or MARK\/MASK/);
  });
});
