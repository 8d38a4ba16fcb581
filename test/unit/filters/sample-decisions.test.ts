import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decisions, MAX_DECISIONS, unitHash } from '../../../src/filters/lib/sample.js';

/** Decisions over `decide`, counting its calls by key. */
function counted(decide: (k: unknown) => boolean) {
  const calls = new Map<unknown, number>();
  const d = new Decisions((k) => {
    calls.set(k, (calls.get(k) ?? 0) + 1);
    return decide(k);
  });
  return { d, calls };
}

describe('sample decisions by key', () => {
  it('unitHash is the first 32 bits of SHA-256(salt + key), as a fraction (decisions are those of earlier versions)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary', maxLength: 8 }), (key, salt) => {
        const digest = createHash('sha256').update(salt).update(key).digest();
        expect(unitHash(key, salt)).toBe(digest.readUInt32BE(0) / 2 ** 32);
      }),
    );
    expect(unitHash('')).toBe(0xe3b0c442 / 2 ** 32); // SHA-256 of nothing begins e3b0c442
  });

  it('decides each key once, as decide() does, whatever the key (integers in the table, the rest in a map)', () => {
    const key = fc.oneof(
      fc.integer({ min: 0, max: 0xffff_ffff }),
      fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      fc.double(),
      fc.string({ maxLength: 8 }),
      fc.constantFrom(0, -0, 2 ** 32, 2 ** 31, 0xffff_ffff, Number.NaN),
    );
    fc.assert(
      fc.property(fc.array(key, { maxLength: 3000 }), (keys) => {
        const decide = (k: unknown) => unitHash(String(k), 'seed') < 0.5;
        const { d, calls } = counted(decide);
        for (const k of [...keys, ...keys]) expect(d.keep(k)).toBe(decide(k));
        for (const n of calls.values()) expect(n).toBe(1);
        expect(d.size).toBe(calls.size);
      }),
      { numRuns: 60 },
    );
  });

  it('tells apart integers that share their low or high bits (the table hashes them, then compares the key)', () => {
    const keys = [];
    for (let i = 0; i < 2000; i++) keys.push(i << 20, i, 0xffff_ffff - i, (i * 65536 + 7) >>> 0);
    const { d, calls } = counted((k) => (k as number) % 3 === 0);
    for (const k of [...keys, ...keys]) expect(d.keep(k)).toBe(k % 3 === 0);
    expect(Math.max(...calls.values())).toBe(1);
  });

  it('keeps at most MAX_DECISIONS: a stream of new keys (a host opening flow after flow) forgets, then decides again', () => {
    const { d, calls } = counted((k) => typeof k === 'number' && k % 2 === 0);
    let most = 0;
    for (let k = 0; k < 3 * MAX_DECISIONS; k++) {
      expect(d.keep(k)).toBe(k % 2 === 0);
      most = Math.max(most, d.size);
    }
    expect(most).toBe(MAX_DECISIONS);
    for (let k = 0; k < 3 * MAX_DECISIONS; k += 997) expect(d.keep(`s${k}`)).toBe(false);
    expect(d.size).toBeLessThanOrEqual(2 * MAX_DECISIONS);
    // The latest keys are still known: decided once.
    d.keep(3 * MAX_DECISIONS - 1);
    expect(calls.get(3 * MAX_DECISIONS - 1)).toBe(1);
  });
});
