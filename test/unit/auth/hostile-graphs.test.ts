/**
 * Graphs a hostile user sends to make the checker (and so the daemon) spend
 * unbounded time, memory or stack: each must come back as a clear refusal
 * after work bounded by GRAPH_LIMITS. No timing asserts: the work is counted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize } from '../../../src/auth/authorize.js';
import { parsePolicy } from '../../../src/auth/load.js';
import { checkOrder } from '../../../src/auth/order.js';
import { graphPaths, MAX_PATHS } from '../../../src/auth/paths.js';
import type { Identity } from '../../../src/auth/policy.js';
import { countPaths } from '../../../src/filters/amplification.js';
import { GraphSyntaxError } from '../../../src/filters/errors.js';
import { compileMatch } from '../../../src/filters/expr/compile.js';
import { parseMatchExpr } from '../../../src/filters/expr/parse.js';
import { REGEX_BUDGET_MS, regexStats } from '../../../src/filters/expr/regex.js';
import { checkGraphText, GRAPH_LIMITS, GraphLimitError, measureSpec } from '../../../src/filters/limits.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { lookupNode } from '../../../src/filters/registry.js';
import { type ExprSpec, GraphSpec, node } from '../../../src/filters/spec.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import '../../../src/filters/builtin.js';

const nobody: Identity = { uid: 5001, gid: 5001, user: 'mallory' };
const nothing = parsePolicy(JSON.stringify({ version: 1, principals: [{ who: { uid: 5001 } }] }));
const ordered = parsePolicy(
  JSON.stringify({
    version: 1,
    principals: [
      {
        who: { uid: 5001 },
        sources: ['conntrack'],
        filters: ['*'],
        order: [
          { filter: 'project', requires: 'anonymize', position: 'before' },
          { filter: 'match', requires: 'sample', position: 'before' },
          { filter: 'match', requires: 'count', position: 'after' },
        ],
      },
    ],
  }),
);
const isSource = (n: string) => lookupNode(n)?.kind === 'source';
const codes = (r: { issues: { code: string }[] }) => r.issues.map((i) => i.code);

/** The issue's reproduction: n nested forks after one source, 2^n paths. */
const forks = (n: number) =>
  `conntrack() -> ${Array.from({ length: n }, (_, i) => `(match(proto == tcp) | match(orig.dport == ${i}))`).join(' -> ')}`;

describe('order-rule explosion', () => {
  it('24 nested forks from a principal allowed nothing: refused for their 2^24 paths before any other check', () => {
    const g = parseGraph(forks(24));
    for (const who of [nobody, { uid: 0, gid: 0 }]) {
      const r = authorize(g, who, nothing);
      expect(r.allowed).toBe(false);
      expect(r.issues).toEqual([
        expect.objectContaining({ code: 'graph_limit', message: expect.stringMatching(/more than 256 paths/) }),
      ]);
    }
    expect(countPaths(parseGraph(forks(8)).root)).toBe(256);
    expect(codes(authorize(parseGraph(forks(8)), nobody, nothing))).toEqual([
      'source_denied',
      ...Array(16).fill('filter_denied'),
    ]);
    // The old checker listed every path: 2^24 of them.
    expect(() => graphPaths(g.root)).toThrow(new RegExp(`more than ${MAX_PATHS} paths`));
  });

  it('ordering rules are one dataflow pass: visits grow with the graph, not with its paths', () => {
    for (const n of [4, 24, 60]) {
      const g = parseGraph(forks(n));
      const { size } = measureSpec(g.root, isSource);
      const { issues, visits } = checkOrder(ordered.principals[0].order, g.root);
      expect(visits).toBeLessThanOrEqual(2 * size.visited); // once forward, once backward
      // Every match lacks a sample before it and a count after it: 2 issues per match node, once each.
      expect(issues).toHaveLength(4 * n);
    }
  });

  it('caps nodes, forks, sources, depth and text before anything else, for root too', () => {
    const root: Identity = { uid: 0, gid: 0 };
    const over = (text: string) => authorize(parseGraph(text), root, nothing).issues;
    expect(over(forks(GRAPH_LIMITS.forks + 1))).toEqual([
      expect.objectContaining({ code: 'graph_limit', message: expect.stringMatching(/limit forks=64/) }),
    ]);
    const many = `conntrack() -> ${Array.from({ length: GRAPH_LIMITS.nodes }, () => 'merge()').join(' -> ')}`;
    expect(over(many)).toEqual([expect.objectContaining({ message: expect.stringMatching(/limit nodes=256/) })]);
    const sources = Array.from({ length: GRAPH_LIMITS.sources + 1 }, () => 'conntrack()').join(' | ');
    expect(over(sources)).toEqual([expect.objectContaining({ message: expect.stringMatching(/limit sources=16/) })]);
    // Deep parentheses: a syntax error at the first level too many, not a stack overflow.
    const deep = `${'('.repeat(100_000)}conntrack()${')'.repeat(100_000)}`;
    expect(() => parseGraph(deep)).toThrow(GraphLimitError); // too long first
    const deep2 = `${'('.repeat(20_000)}conntrack()${')'.repeat(20_000)}`;
    expect(() => parseGraph(deep2)).toThrow(/nested more than 32 levels deep/);
    expect(() => parseGraph(`replay(file=${'['.repeat(5000)}))`)).toThrow(GraphSyntaxError);
    expect(() => checkGraphText('x'.repeat(GRAPH_LIMITS.textLength + 1))).toThrow(/limit of 65536/);
    expect(() => checkGraphText('x'.repeat(GRAPH_LIMITS.textLength))).not.toThrow();
  });

  it('a GraphSpec sent as JSON is measured without recursion before the schema walks it', () => {
    let root: ExprSpec = node('conntrack');
    for (let i = 0; i < 100_000; i++) root = { type: 'pipe', steps: [root, node('merge')] };
    const r = GraphSpec.safeParse({ version: 1, root });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].message).toMatch(/levels of nesting/);
    // A wide spec stops counting at the limit: the walk never visits the rest.
    const wide = { type: 'fork' as const, branches: Array.from({ length: 100_000 }, () => node('conntrack')) };
    const m = measureSpec(wide, isSource);
    expect(m.issues[0].message).toMatch(/nodes/);
    expect(m.size.visited).toBe(1);
    expect(GraphSpec.safeParse({ version: 1, root: node('conntrack') }).success).toBe(true);
    // Deep lists in a parameter, which zod's Value schema would walk recursively.
    let v: unknown = 'x';
    for (let i = 0; i < 100_000; i++) v = [v];
    const deepParam = GraphSpec.safeParse({ version: 1, root: node('conntrack', [], { events: v as never }) });
    expect(deepParam.error?.issues[0].message).toMatch(/levels of nesting in a parameter/);
    expect(GraphSpec.safeParse({ version: 1, root: node('conntrack', [], { events: [['new']] }) }).success).toBe(true);
  });

  it("a GraphSpec's values and strings are counted before the schema walks them (each value costs zod a union)", () => {
    const refusal = (root: ExprSpec) => GraphSpec.safeParse({ version: 1, root }).error?.issues[0].message;
    // 200 000 nulls in one frame held the daemon's thread for a second: refused by count, not by zod's walk
    // (whose issue would be about the type of each null).
    const nulls = Array.from({ length: 200_000 }, () => null) as never[];
    expect(refusal(node('x', nulls))).toMatch(/more than 4096 argument and parameter values/);
    const keys = Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, 1]));
    expect(refusal(node('x', [], keys))).toMatch(/argument and parameter values/);
    // Nested lists count every element; so do the values of several nodes together.
    expect(refusal(node('x', [Array.from({ length: 5000 }, () => ['a'])]))).toMatch(/values/);
    const half = () =>
      node(
        'x',
        Array.from({ length: 2100 }, () => 1),
      );
    expect(refusal({ type: 'pipe', steps: [half(), half()] })).toMatch(/values/);
    // Characters of strings and names share the text's limit.
    expect(refusal(node('x', ['a'.repeat(GRAPH_LIMITS.textLength + 1)]))).toMatch(/characters in names and strings/);
    const long = () => node('x', ['a'.repeat(40_000)]);
    expect(refusal({ type: 'pipe', steps: [long(), long()] })).toMatch(/characters/);
    // At the limits exactly: measured as fine (the schema then checks the rest).
    expect(
      measureSpec(
        node(
          'x',
          Array.from({ length: GRAPH_LIMITS.values }, () => 1),
        ),
        isSource,
      ).issues,
    ).toEqual([]);
    expect(
      measureSpec(
        node(
          'x',
          Array.from({ length: GRAPH_LIMITS.values + 1 }, () => 1),
        ),
        isSource,
      ).issues,
    ).toHaveLength(1);
    expect(measureSpec(node('x', ['a'.repeat(GRAPH_LIMITS.textLength - 1)]), isSource).issues).toEqual([]);
  });

  it('a regex literal is found by the character before it, not by searching back at every slash', () => {
    expect(parseGraph('conntrack() -> match(qname ~   /(a)b/ || qname ~ /c/)').root).toMatchObject({
      steps: [{}, { args: ['qname ~   /(a)b/ || qname ~ /c/'] }],
    });
    // 40k bare slashes: the scan was once quadratic in them; now one pass, then refused for length.
    const slashes = `conntrack() -> match(qname ${'/'.repeat(40_000)})`;
    expect(() => parseGraph(slashes)).toThrow(/above the limit of 4096/);
  });

  it('match expressions are bounded in length and nesting', () => {
    expect(() => parseMatchExpr(`${'!'.repeat(50_000)}proto`)).toThrow(/above the limit/);
    expect(() => parseMatchExpr(`${'!'.repeat(1000)}proto`)).toThrow(/nested more than 32/);
    expect(() => parseMatchExpr(`${'('.repeat(1000)}proto${')'.repeat(1000)}`)).toThrow(/nested more than 32/);
    expect(() => parseGraph(`conntrack() -> match(${'a == 1 && '.repeat(500)}a == 1)`)).toThrow(
      /above the limit of 4096/,
    );
  });
});

describe('regex denial of service', () => {
  it("the issue's pattern runs in linear time (RE2): it simply does not match", () => {
    const e = parseMatchExpr('orig.src ~ /^(.|.|.|.|.|.|.|.|.|.|.|.)*X$/');
    const pred = compileMatch(e);
    // 40 characters: 12^40 backtracking steps for V8's engine; RE2 walks the input once.
    expect(pred({ orig: { src: 'a'.repeat(40) } })).toBe(false);
    expect(pred({ orig: { src: `${'a'.repeat(10_000)}X` } })).toBe(true);
    const nested = compileMatch(parseMatchExpr('qname ~ /^(a+)+$/'));
    expect(nested({ qname: `${'a'.repeat(5000)}!` })).toBe(false);
  });

  it('keeps the JS flags it can honour and refuses what needs backtracking, too long or too big', () => {
    expect(compileMatch(parseMatchExpr('qname ~ /SHOP\\.test$/i'))({ qname: 'cdn.shop.TEST' })).toBe(true);
    expect(() => parseMatchExpr('qname ~ /(a)\\1/')).toThrow(/bad regular expression.*RE2 syntax/s);
    expect(() => parseMatchExpr('qname ~ /a(?=b)/')).toThrow(/bad regular expression/);
    expect(() => parseMatchExpr(`qname ~ /${'a'.repeat(GRAPH_LIMITS.patternLength + 1)}/`)).toThrow(
      /pattern of 257 characters/,
    );
    expect(() => parseMatchExpr('qname ~ /((a{100}){100}){100}/')).toThrow(/bad regular expression/);
    expect(() => parseMatchExpr('qname ~ /a/x')).toThrow(/flag "x" is not supported/);
  });

  it('compiles a pattern once however often a graph holds it, and a graph with many slow-to-compile ones is refused', () => {
    // 200 matches of one pattern: read, checked and built, it is compiled once.
    const before = regexStats.compiles;
    const same = Array.from({ length: 200 }, () => 'match(qname ~ /^(\\pL|\\pN){30}\\.shop$/)').join(' -> ');
    const g = parseGraph(`dns() -> ${same}`);
    expect(new Flowgrab().check(g)).toEqual([]);
    expect(regexStats.compiles - before).toBe(1);
    // 255 distinct patterns of two Unicode classes repeated 1000 times (7-15 ms each to compile, 1.8 s in all
    // per instantiate for the daemon's one thread): the graph is refused once it has taken REGEX_BUDGET_MS.
    const slow = Array.from({ length: 255 }, (_, i) => `match(qname ~ /(\\pL|\\pN){1000}x${i}/)`).join(' -> ');
    const start = regexStats.compiles;
    expect(() => parseGraph(`dns() -> ${slow}`)).toThrow(
      /take more than 100 ms to compile: use fewer or simpler patterns/,
    );
    expect(regexStats.compiles - start).toBeLessThan(100);
    expect(REGEX_BUDGET_MS).toBe(100);
    // The budget is the graph's: the next graph has its own, and a pattern it refused is not compiled again.
    expect(() => parseGraph('dns() -> match(qname ~ /(\\pL|\\pN){1000}x0/)')).not.toThrow();
  });
});

describe('the dataflow agrees with listing every path', () => {
  const filters = ['match', 'sample', 'merge', 'dedupe'];
  const filterExpr: fc.Memo<ExprSpec> = fc.memo((d) =>
    d <= 1
      ? fc.constantFrom(...filters).map((f) => node(f))
      : fc.oneof(
          fc.constantFrom(...filters).map((f) => node(f)),
          fc
            .array(filterExpr(d - 1), { minLength: 2, maxLength: 3 })
            .map((steps): ExprSpec => ({ type: 'pipe', steps })),
          fc
            .array(filterExpr(d - 1), { minLength: 2, maxLength: 3 })
            .map((branches): ExprSpec => ({ type: 'fork', branches })),
        ),
  );
  const sourced = filterExpr(4).map((e): ExprSpec => ({ type: 'pipe', steps: [node('conntrack'), e] }));
  const graphs = fc.oneof(
    sourced,
    fc.array(sourced, { minLength: 2, maxLength: 3 }).map((branches): ExprSpec => ({ type: 'fork', branches })),
  );
  const rules = [
    { filter: 'match', requires: 'sample', position: 'before' as const },
    { filter: 'sample', requires: 'dedupe', position: 'after' as const },
  ];

  it('name rules: the same nodes are refused either way', () => {
    fc.assert(
      fc.property(graphs, (root) => {
        const byPaths = new Set<string>();
        for (const p of graphPaths(root)) {
          const names = p.map((s) => s.node.name);
          p.forEach((s, i) => {
            for (const r of rules) {
              if (s.node.name !== r.filter) continue;
              const seen = r.position === 'before' ? names.slice(0, i) : names.slice(i + 1);
              if (!seen.includes(r.requires)) byPaths.add(`${s.path.join('.')} ${r.position}`);
            }
          });
        }
        const byFlow = new Set(
          checkOrder(rules, root).issues.map(
            (i) => `${i.path.join('.')} ${/ before it/.test(i.message) ? 'before' : 'after'}`,
          ),
        );
        expect([...byFlow].sort()).toEqual([...byPaths].sort());
      }),
      { numRuns: 300 },
    );
  });

  it('anonymize before project: refused exactly where some path leaves a projected field unanonymized', () => {
    const steps = [
      node('anonymize', ['orig.src']),
      node('anonymize', ['orig.dst']),
      node('anonymize', ['proto'], { mode: 'hash' }),
      node('redact', ['orig.dst']),
      node('match', ['proto == tcp']),
      node('project', ['orig.src', 'orig.dst']),
    ];
    const expr: fc.Memo<ExprSpec> = fc.memo((d) =>
      d <= 1
        ? fc.constantFrom(...steps)
        : fc.oneof(
            fc.constantFrom(...steps),
            fc.array(expr(d - 1), { minLength: 2, maxLength: 3 }).map((s): ExprSpec => ({ type: 'pipe', steps: s })),
            fc.array(expr(d - 1), { minLength: 2, maxLength: 3 }).map((b): ExprSpec => ({ type: 'fork', branches: b })),
          ),
    );
    const rule = [{ filter: 'project', requires: 'anonymize', position: 'before' as const }];
    const covered = (n: ExprSpec & { type: 'node' }) =>
      n.name === 'anonymize' || n.name === 'redact'
        ? (n.args as string[]).flatMap((f) => (f === 'orig.dst' && n.name === 'redact' ? [f, 'reply.src'] : [f]))
        : [];
    fc.assert(
      fc.property(expr(4), (e) => {
        const root: ExprSpec = { type: 'pipe', steps: [node('conntrack'), e] };
        const byPaths = new Set<string>();
        for (const p of graphPaths(root)) {
          const done = new Set<string>();
          for (const s of p) {
            if (s.node.name === 'project' && !['orig.src', 'orig.dst'].every((f) => done.has(f)))
              byPaths.add(s.path.join('.'));
            for (const f of covered(s.node)) done.add(f);
          }
        }
        const byFlow = new Set(checkOrder(rule, root).issues.map((i) => i.path.join('.')));
        expect([...byFlow].sort()).toEqual([...byPaths].sort());
      }),
      { numRuns: 300 },
    );
  });
});
