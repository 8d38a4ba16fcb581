import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeySet } from '../../../src/sources/conntrack/key-set.js';

/** Entry keys as entryKey makes them: id · 2^20 + 20 hash bits, below 2^52; a few ids so keys repeat. */
const key = fc
  .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 3 }))
  .map(([id, h]) => id * 0x100000 + h);
const op = fc.oneof(fc.record({ add: key }), fc.record({ del: key }));

describe('KeySet', () => {
  it('without deletes, is a set that forgets the oldest insertion first (as a capped insertion-ordered Set)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(key, { maxLength: 400 }), (cap, keys) => {
        const s = new KeySet(cap);
        const model = new Set<number>();
        for (const k of keys) {
          expect(s.add(k)).toBe(!model.has(k));
          if (!model.has(k)) {
            model.add(k);
            if (model.size > cap) model.delete(model.values().next().value as number);
          }
          expect(s.size).toBe(model.size);
        }
        for (let id = 0; id <= 40; id++)
          for (let h = 0; h < 4; h++) {
            const k = id * 0x100000 + h;
            expect(s.has(k)).toBe(model.has(k));
          }
      }),
    );
  });

  it('with deletes: a deleted key is gone, the newest keys stay, and the size is counted exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(op, { maxLength: 400 }), (cap, ops) => {
        const s = new KeySet(cap);
        const order: number[] = []; // live keys, oldest first, as the model keeps them
        for (const o of ops) {
          if ('add' in o) {
            const fresh = !order.includes(o.add);
            if (fresh) order.push(o.add);
            expect(s.add(o.add)).toBe(fresh);
          } else {
            const i = order.indexOf(o.del);
            if (i >= 0) order.splice(i, 1);
            s.delete(o.del);
            expect(s.has(o.del)).toBe(false);
          }
          // Whatever was forgotten was among the oldest: every key present is in the model, and the newest
          // 7/8 of the bound's worth of keys are all present.
          const present = order.filter((k) => s.has(k));
          expect(s.size).toBe(present.length);
          expect(s.size).toBeLessThanOrEqual(cap);
          const keep = Math.min(order.length, Math.floor((cap * 7) / 8));
          for (const k of order.slice(order.length - keep)) expect(s.has(k)).toBe(true);
          // Forgotten keys leave the model too (they were the oldest).
          for (let i = order.length - 1; i >= 0; i--) if (!s.has(order[i])) order.splice(i, 1);
        }
      }),
    );
  });

  it('tells apart keys whose 32-bit hashes are equal (the ring decides), and keys sharing home slots', () => {
    // hash(key) = imul(lo ^ imul(hi, 0x85ebca6b), 0x9e3779b1): with lo = L ^ imul(hi, 0x85ebca6b) every key
    // below has the same hash, so every probe finds equal hashes and must compare the keys themselves.
    const same = (hi: number, L: number) => hi * 4294967296 + ((L ^ Math.imul(hi, 0x85ebca6b)) >>> 0);
    const keys = [
      ...Array.from({ length: 200 }, (_, hi) => same(hi, 12345)),
      ...Array.from({ length: 200 }, (_, hi) => same(hi + 1000, 777)),
    ];
    expect(new Set(keys).size).toBe(400);
    const s = new KeySet(4096);
    for (const k of keys) expect(s.add(k)).toBe(true);
    for (const k of keys) expect(s.add(k)).toBe(false);
    for (let i = 0; i < keys.length; i += 2) s.delete(keys[i]);
    for (let i = 0; i < keys.length; i++) expect(s.has(keys[i])).toBe(i % 2 === 1);
    expect(s.size).toBe(200);
    for (let i = 0; i < keys.length; i += 2) expect(s.add(keys[i])).toBe(true);
    expect(s.size).toBe(400);
  });

  it('keeps many keys exactly (growth and rehashing)', () => {
    const s = new KeySet(1 << 16);
    for (let i = 0; i < 70_000; i++) s.add(i * 0x100000 + (i & 0xfffff));
    expect(s.size).toBe(1 << 16);
    expect(s.has(0)).toBe(false);
    expect(s.has(69_999 * 0x100000 + 69_999)).toBe(true);
    expect(s.has((70_000 - (1 << 16)) * 0x100000 + (70_000 - (1 << 16)))).toBe(true);
    for (let i = 10_000; i < 60_000; i++) s.delete(i * 0x100000 + i);
    expect(s.size).toBe((1 << 16) - 50_000);
    expect(s.has(65_000 * 0x100000 + 65_000)).toBe(true);
  });
});
