import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { graph } from '../../../src/filters/builder.js';
import { GraphSyntaxError } from '../../../src/filters/errors.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { printGraph } from '../../../src/filters/print.js';
import { type ExprSpec, GraphSpec, node, type Value } from '../../../src/filters/spec.js';

describe('graph language parser', () => {
  it('parses the documented example (docs/architecture.md): -> binds tighter than |, parentheses group', () => {
    const g = parseGraph(`conntrack(events=[new,destroy], family=ipv4)
  -> match(proto == tcp && orig.dport in [80,443] && orig.src in 192.168.1.0/24)
  -> ( count(by=orig.src, every=10s) | sample(rate=0.1) -> project(orig.src, orig.dst) )`);
    expect(g.root).toEqual({
      type: 'pipe',
      steps: [
        node('conntrack', [], { events: ['new', 'destroy'], family: 'ipv4' }),
        node('match', ['proto == tcp && orig.dport in [80,443] && orig.src in 192.168.1.0/24']),
        {
          type: 'fork',
          branches: [
            node('count', [], { by: 'orig.src', every: '10s' }),
            { type: 'pipe', steps: [node('sample', [], { rate: 0.1 }), node('project', ['orig.src', 'orig.dst'])] },
          ],
        },
      ],
    });
  });

  it("accepts FFPF's tuple form, bare names, strings, hex, booleans, netns names with dashes", () => {
    expect(parseGraph('(sample, 0.5) -> merge').root).toEqual({
      type: 'pipe',
      steps: [node('sample', [0.5]), node('merge')],
    });
    expect(parseGraph("conntrack(netns=fglab-router, mark=0x10, dump=true, note='a b')").root).toEqual(
      node('conntrack', [], { netns: 'fglab-router', mark: 16, dump: true, note: 'a b' }),
    );
    expect(parseGraph('a->b').root).toEqual({ type: 'pipe', steps: [node('a'), node('b')] });
    expect(parseGraph('match(qname ~ /\\.(test|lan)$/i)').root).toEqual(node('match', ['qname ~ /\\.(test|lan)$/i']));
  });

  const bad: [string, number, number, RegExp][] = [
    ['conntrack() -> -> x', 1, 16, /expected a source or filter, got "->"/],
    ['conntrack(events=[new', 1, 22, /expected "," or "]", got the end/],
    ['conntrack()\n  -> match(proto == tcp\n', 2, 6, /missing "\)"/],
    ['a(x=1, x=2)', 1, 8, /parameter "x" given twice/],
    ['a(k=1, 2)', 1, 8, /positional arguments must come before/],
    ['a() b()', 1, 5, /expected "->", "\|" or the end/],
    ['', 1, 1, /empty graph/],
    ['a(x="open', 1, 5, /unterminated string/],
  ];
  it.each(bad)('reports %j at line %i, column %i with a caret', (text, line, col, why) => {
    let err: GraphSyntaxError | undefined;
    try {
      parseGraph(text);
    } catch (e) {
      err = e as GraphSyntaxError;
    }
    expect(err).toBeInstanceOf(GraphSyntaxError);
    expect(err?.reason).toMatch(why);
    expect([err?.line, err?.col]).toEqual([line, col]);
    const caretLine = err!.message.split('\n').at(-1)!;
    expect(caretLine.indexOf('^')).toBe(col + 1); // two spaces of indent, then col-1 spaces
  });
});

const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/).filter((n) => n !== 'match' && n !== 'true' && n !== 'false');
const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }),
  fc.boolean(),
  fc.string(),
  // Words and near-words: which strings print bare (print.ts) must agree with how the lexer reads them back.
  fc.stringMatching(/^[A-Za-z0-9_.:/*+\-># ]{1,6}$/),
  fc.constantFrom('10s', 'orig.src', '192.168.1.0/24', 'fd00::1', 'fglab-router', 'true', '12', '', 'a b', 'x"y\\z'),
  fc.constantFrom('a->b', '->', 'a-', '-', '+1', '0x1f', '.5', '1e3', '#x', '*', 'a#b', '@', "'", 'false'),
);
const value: fc.Arbitrary<Value> = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }));
const nodeArb = fc.oneof(
  fc.record({
    type: fc.constant('node' as const),
    name,
    args: fc.array(value, { maxLength: 2 }),
    params: fc.dictionary(name, value, { maxKeys: 3 }),
  }),
  fc
    .constantFrom('proto == tcp', 'orig.dport in [80, 443] && !(orig.src in 10.0.0.0/8)', 'qname ~ /a\\)b/')
    .map((e) => node('match', [e])),
);
const expr: fc.Arbitrary<ExprSpec> = fc.letrec<{ e: ExprSpec }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nodeArb,
    fc.record({ type: fc.constant('pipe' as const), steps: fc.array(tie('e'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ type: fc.constant('fork' as const), branches: fc.array(tie('e'), { minLength: 2, maxLength: 3 }) }),
  ),
})).e;

describe('printing graphs', () => {
  it('parse ∘ print is the identity on GraphSpecs', () => {
    fc.assert(
      fc.property(expr, (root) => {
        const g: GraphSpec = { version: 1, root };
        expect(GraphSpec.safeParse(g).success).toBe(true);
        expect(parseGraph(printGraph(g))).toEqual(g);
      }),
      { numRuns: 400 },
    );
  });

  it('the builder makes the same spec as the text', () => {
    const built = graph
      .source('conntrack', { events: ['new', 'destroy'], family: 'ipv4' })
      .match('proto == tcp && orig.dport in [80,443] && orig.src in 192.168.1.0/24')
      .fork(
        graph.filter('count', { by: 'orig.src', every: '10s' }),
        graph.filter('sample', { rate: 0.1 }).to('project', {}, 'orig.src', 'orig.dst'),
      );
    const text =
      'conntrack(events=[new, destroy], family=ipv4) -> match(proto == tcp && orig.dport in [80,443] && orig.src in 192.168.1.0/24) -> (count(by=orig.src, every=10s) | sample(rate=0.1) -> project(orig.src, orig.dst))';
    expect(built.toSpec()).toEqual(parseGraph(text));
    expect(built.toString()).toBe(text);
  });
});
