import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type parsePrefix, prefixContains } from '../../../examples/spin/domain/ip.js';
import { IpList, parseEntry } from '../../../examples/spin/domain/lists.js';

// Addresses and prefixes drawn from a few small ranges, so that they often overlap.
const v4 = fc.tuple(fc.constantFrom(10, 192), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }));
const addr4 = v4.map(([a, b, c]) => `${a}.${b}.0.${c}`);
const addr6 = fc
  .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0xffff }))
  .map(([a, b]) => `2001:db8:${a}::${b.toString(16)}`);
const prefix = fc.oneof(
  fc.tuple(addr4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`),
  fc.tuple(addr6, fc.integer({ min: 0, max: 128 })).map(([a, l]) => `${a}/${l}`),
  addr4,
  addr6,
);

describe('IpList.containsIp', () => {
  it('says what comparing the address with every listed prefix says, through any adds and removes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), prefix), { maxLength: 60 }),
        fc.array(fc.oneof(addr4, addr6), { minLength: 1, maxLength: 30 }),
        (ops, probes) => {
          const list = new IpList('block');
          const listed = new Map<string, ReturnType<typeof parsePrefix>>();
          for (const [add, text] of ops) {
            const e = parseEntry(text, false);
            if (e?.kind !== 'ip') throw new Error(`not a prefix: ${text}`);
            if (add) {
              expect(list.add(e)).toBe(!listed.has(e.text));
              listed.set(e.text, e.prefix);
            } else {
              expect(list.remove(e)).toBe(listed.delete(e.text));
            }
          }
          for (const ip of probes)
            expect(list.containsIp(ip), ip).toBe([...listed.values()].some((p) => p && prefixContains(p, ip)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('after clear() nothing is listed', () => {
    const list = new IpList('ignore');
    for (const t of ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']) list.add(parseEntry(t, false)!);
    expect(['10.1.2.3', '192.0.2.7', '2001:db8::1'].map((ip) => list.containsIp(ip))).toEqual([true, true, true]);
    list.clear();
    expect(['10.1.2.3', '192.0.2.7', '2001:db8::1'].map((ip) => list.containsIp(ip))).toEqual([false, false, false]);
    expect(list.containsIp('not an address')).toBe(false);
  });
});
