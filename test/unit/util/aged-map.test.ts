import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgedMap } from '../../../src/util/aged-map.js';

/** What an AgedMap should hold: the live entries, oldest first, as a plain array. */
class Model {
  entries: [number, number][] = [];
  private at(k: number): number {
    return this.entries.findIndex(([x]) => x === k);
  }
  set(k: number, v: number): void {
    const i = this.at(k);
    if (i >= 0) this.entries[i][1] = v;
    else this.entries.push([k, v]);
  }
  renew(k: number, v: number): void {
    this.delete(k);
    this.entries.push([k, v]);
  }
  delete(k: number): boolean {
    const i = this.at(k);
    if (i >= 0) this.entries.splice(i, 1);
    return i >= 0;
  }
  get(k: number): number | undefined {
    return this.entries[this.at(k)]?.[1];
  }
}

const op = fc.oneof(
  fc.tuple(fc.constant('set' as const), fc.integer({ min: 0, max: 40 }), fc.integer()),
  fc.tuple(fc.constant('renew' as const), fc.integer({ min: 0, max: 40 }), fc.integer()),
  fc.tuple(fc.constant('delete' as const), fc.integer({ min: 0, max: 40 }), fc.constant(0)),
  fc.tuple(fc.constant('shift' as const), fc.constant(0), fc.constant(0)),
  fc.tuple(fc.constant('clear' as const), fc.constant(0), fc.constant(0)),
);

describe('AgedMap', () => {
  it('behaves as an insertion-ordered map with renew, shift and newest, under any sequence of operations', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const m = new AgedMap<number, number>();
        const ref = new Model();
        for (const [name, k, v] of ops) {
          if (name === 'set') {
            m.set(k, v);
            ref.set(k, v);
          } else if (name === 'renew') {
            m.renew(k, v);
            ref.renew(k, v);
          } else if (name === 'delete') expect(m.delete(k)).toBe(ref.delete(k));
          else if (name === 'shift') expect(m.shift()).toBe(ref.entries.shift()?.[1]);
          else {
            m.clear();
            ref.entries = [];
          }
          expect(m.size).toBe(ref.entries.length);
          expect(m.oldestKey()).toBe(ref.entries[0]?.[0]);
          expect(m.oldest()).toBe(ref.entries[0]?.[1]);
          expect(m.newestKey()).toBe(ref.entries.at(-1)?.[0]);
          expect(m.get(k)).toBe(ref.get(k));
          expect(m.has(k)).toBe(ref.get(k) !== undefined);
        }
        expect([...m]).toEqual(ref.entries);
        expect([...m.keys()]).toEqual(ref.entries.map(([k]) => k));
        expect([...m.values()]).toEqual(ref.entries.map(([, v]) => v));
      }),
      { numRuns: 300 },
    );
  });

  it('deleting while iterating visits every entry not yet deleted, once', () => {
    const m = new AgedMap<number, string>();
    for (let i = 0; i < 200; i++) m.set(i, `v${i}`);
    const seen: number[] = [];
    for (const [k] of m) {
      seen.push(k);
      m.delete(k); // the current one
      m.delete(k + 1); // one ahead: not visited
    }
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => 2 * i));
    expect(m.size).toBe(0);
  });

  it('stays bounded in what it holds: a front-evicted map of 1 000 keeps at most a few thousand slots', () => {
    const m = new AgedMap<number, number>();
    for (let i = 0; i < 1_000_000; i++) {
      m.renew(i % 5000, i); // uses that revisit keys leave dead slots behind
      if (m.size > 1000) m.shift();
    }
    expect(m.size).toBe(1000);
    const slots = (m as unknown as { queue: unknown[]; head: number }).queue.length;
    expect(slots).toBeLessThanOrEqual(2 * 1000 + 2 * 64 + 1);
  });
});
