import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MatchExpr } from '../../../src/filters/expr/ast.js';
import { compileMatch, interpretMatch } from '../../../src/filters/expr/compile.js';
import { ExprSyntaxError, parseMatchExpr } from '../../../src/filters/expr/parse.js';
import { RECORD_FIELDS } from '../../../src/filters/sources.js';
import { ct, ctRecord } from '../../helpers/records.js';

const cat = RECORD_FIELDS.conntrack;
const run = (src: string, r: unknown) => compileMatch(parseMatchExpr(src), cat)(r);

describe('match expressions', () => {
  it('compares, tests membership, prefixes and regexes, and combines them', () => {
    const r = ct(7, { orig: { src: '192.168.1.20', dst: 'fd00:1::9', sport: 5000, dport: 443 } });
    expect(run('proto == tcp && orig.dport in [80,443]', r)).toBe(true);
    expect(run('orig.src in 192.168.1.0/24', r)).toBe(true);
    expect(run('orig.src in 192.168.2.0/24', r)).toBe(false);
    expect(run('orig.dst in fd00:1::/64 && !(orig.dst in fd00:2::/64)', r)).toBe(true);
    expect(run('orig.sport >= 5000 && orig.sport < 5001', r)).toBe(true);
    expect(run('proto ~ /^T.P$/i || id == 0', r)).toBe(true);
    expect(run('status == CONFIRMED', r)).toBe(true); // an array field: "some value equals"
    expect(run('status != DYING', r)).toBe(true); // "no value equals"
    expect(run('mark', r)).toBe(false); // truthiness of an absent field
    expect(run('orig.dst == fd00:1:0::9', r)).toBe(true); // literals are canonicalised like records
  });

  it('compiles to a plain function, not a tree walk', () => {
    const f = compileMatch(parseMatchExpr('proto == tcp && orig.dport in [80,443]'), cat);
    expect(f.toString()).toBe(`(r) => ((r.proto === "tcp") && (r.orig?.dport === 80 || r.orig?.dport === 443))`);
  });

  it('reports syntax errors with the column', () => {
    const cases: [string, number, RegExp][] = [
      ['proto ==', 9, /expected a value/],
      ['orig.src in 10.0.0.0', 13, /expected \[list\] or an address prefix/],
      ['(proto == tcp', 14, /expected "\)"/],
      ['proto ~ /[/', 9, /bad regular expression/],
      ['== tcp', 1, /expected a field name/],
    ];
    for (const [src, col, why] of cases) {
      const err = (() => {
        try {
          parseMatchExpr(src);
        } catch (e) {
          return e as ExprSyntaxError;
        }
      })();
      expect(err, src).toBeInstanceOf(ExprSyntaxError);
      expect(err?.message).toMatch(why);
      expect(err?.col, src).toBe(col);
    }
  });
});

const field = fc.constantFrom(
  'proto',
  'family',
  'orig.src',
  'orig.dst',
  'orig.dport',
  'orig.sport',
  'orig.packets',
  'mark',
  'state',
  'status',
  'reply.dst',
  'orig.icmp.type',
);
const lit = fc.oneof(
  fc.constantFrom('tcp', 'udp', 'ipv6', 'ESTABLISHED', 'ASSURED', '2001:db8::1'),
  fc.ipV4(),
  fc.integer({ min: 0, max: 70000 }),
);
const leaf: fc.Arbitrary<MatchExpr> = fc.oneof(
  fc.record({
    op: fc.constant('cmp' as const),
    cmp: fc.constantFrom('==', '!=', '<', '<=', '>', '>=' as const),
    field,
    value: lit,
  }),
  fc.record({ op: fc.constant('in' as const), field, values: fc.array(lit, { maxLength: 6 }) }),
  fc.record({
    op: fc.constant('cidr' as const),
    field,
    cidr: fc.constantFrom('10.0.0.0/8', '0.0.0.0/0', '192.168.0.0/16', 'fd00::/8', '2001:db8::/32', '127.0.0.0/8'),
  }),
  fc.record({
    op: fc.constant('regex' as const),
    field,
    source: fc.constantFrom('^t', 'p$', '\\d', '::'),
    flags: fc.constantFrom('', 'i'),
  }),
  fc.record({ op: fc.constant('truthy' as const), field }),
);
const expr: fc.Arbitrary<MatchExpr> = fc.letrec<{ e: MatchExpr }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ op: fc.constantFrom('and', 'or' as const), left: tie('e'), right: tie('e') }),
    fc.record({ op: fc.constant('not' as const), arg: tie('e') }),
  ),
})).e;

describe('compiled predicates', () => {
  it('agree with the reference interpreter on random expressions and records', () => {
    fc.assert(
      fc.property(expr, fc.array(ctRecord, { minLength: 1, maxLength: 8 }), (e, recs) => {
        const withCatalog = compileMatch(e, cat);
        const generic = compileMatch(e);
        for (const r of recs) {
          const want = interpretMatch(e, r);
          expect(withCatalog(r)).toBe(want);
          expect(generic(r)).toBe(want);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
