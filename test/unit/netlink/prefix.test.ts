/**
 * The one prefix module agrees with a naive reference — addresses as bit
 * strings, a prefix matches when the first `len` bits are equal — over
 * random IPv4 and IPv6 prefixes and addresses, written out in full (the
 * reference never calls the module's parser).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPrefix, isPrefix, parsePrefix, prefixContains, prefixMatcher } from '../../../src/netlink/prefix.js';

const bitsOf = (bytes: number[]) => bytes.map((b) => b.toString(2).padStart(8, '0')).join('');
const v4Text = (b: number[]) => b.join('.');
const v6Text = (b: number[]) => {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] << 8) | b[i + 1]).toString(16));
  return g.join(':');
};
const naiveInside = (net: number[], len: number, addr: number[]) =>
  net.length === addr.length && bitsOf(net).slice(0, len) === bitsOf(addr).slice(0, len);

const family = fc.constantFrom(4 as const, 6 as const);
const bytesOf = (n: number) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n });

/** A prefix and an address: random, or the prefix's own bits with a random tail (so both outcomes are common). */
const case_ = family.chain((f) => {
  const n = f === 4 ? 4 : 16;
  return fc
    .record({ net: bytesOf(n), len: fc.integer({ min: 0, max: n * 8 }), other: bytesOf(n), near: fc.boolean() })
    .map(({ net, len, other, near }) => {
      const bits = near ? bitsOf(net).slice(0, len) + bitsOf(other).slice(len) : bitsOf(other);
      const addr = Array.from({ length: n }, (_, i) => Number.parseInt(bits.slice(i * 8, i * 8 + 8), 2));
      const text = f === 4 ? v4Text : v6Text;
      return { f, net, len, addr, prefix: `${text(net)}/${len}`, ip: text(addr) };
    });
});

describe('IP prefix module (netlink/prefix.ts)', () => {
  it('matches exactly where the naive bit-string comparison does, IPv4 and IPv6', () => {
    fc.assert(
      fc.property(case_, ({ net, len, addr, prefix, ip }) => {
        const want = naiveInside(net, len, addr);
        expect(prefixMatcher(prefix)(ip)).toBe(want);
        expect(prefixContains(parsePrefix(prefix)!, ip)).toBe(want);
      }),
      { numRuns: 3000 },
    );
  });

  it('parses to the masked network and formats back to text that parses to the same prefix', () => {
    fc.assert(
      fc.property(case_, ({ f, net, len, prefix }) => {
        const p = parsePrefix(prefix)!;
        expect(p.family).toBe(f);
        expect(p.len).toBe(len);
        expect(bitsOf([...p.bytes])).toBe(
          bitsOf(net)
            .slice(0, len)
            .padEnd(net.length * 8, '0'),
        );
        const again = parsePrefix(formatPrefix(p))!;
        expect(again.bytes.equals(p.bytes) && again.len === p.len).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('a prefix never takes an address of the other family or a non-address', () => {
    const m4 = prefixMatcher('0.0.0.0/0');
    const m6 = prefixMatcher('::/0');
    for (const v of [
      '::ffff:10.0.0.1',
      'fd00::1',
      '10.0.0',
      '10.0.0.256',
      '1..2.3',
      '01234.1.1.1',
      '',
      7,
      undefined,
      null,
    ]) {
      expect(m4(v)).toBe(false);
    }
    for (const v of ['10.0.0.1', 'fd00::g', ':::', 'fd00::1%eth0x', 42]) expect(m6(v)).toBe(false);
    expect(m4('10.0.0.1')).toBe(true);
    expect(m6('::ffff:10.0.0.1')).toBe(true);
  });

  it('validates: a length in range after one slash, an address before it, nothing else', () => {
    for (const ok of ['10.0.0.0/8', '10.1.2.3/32', '0.0.0.0/0', 'fd00:1::/64', '::/0', '::ffff:1.2.3.4/128']) {
      expect(isPrefix(ok), ok).toBe(true);
    }
    const bad = [
      '10.0.0.0',
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0.0/8/8',
      '10.0.0.0/-1',
      '10.0.0.0/+8',
      '10.0.0.0/ 8',
      '10.0.0.0/08x',
      '10.0.0.0/1e1',
      '10.0.0/8',
      'fe80::%eth0/64',
      'x/8',
      '/8',
      `${'1'.repeat(100)}/8`,
    ];
    for (const b of bad) expect(isPrefix(b), b).toBe(false);
    expect(() => prefixMatcher('10.0.0.0/33')).toThrow(/not an address prefix/);
  });
});
