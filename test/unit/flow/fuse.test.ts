import fc from 'fast-check';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { projector, projectRecord } from '../../../src/filters/lib/project.js';
import { borrowers } from '../../../src/filters/lib/pure.js';
import { lookupNode, type Rec, type Stepper } from '../../../src/filters/registry.js';
import '../../../src/filters/builtin.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { FusedNode, fusion } from '../../../src/flow/fuse.js';
import type { FlowHandle } from '../../../src/flow/handle.js';
import { StepNode } from '../../../src/flow/network.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';

let feeds = 0;
const feedName = () => `fuse${process.pid}x${feeds++}`;

async function start(fg: Flowgrab, graph: string, fused: boolean): Promise<FlowHandle> {
  fusion.enabled = fused;
  try {
    const f = fg.create({ bufferRecords: 100_000 });
    f.populate(graph);
    await f.instantiate();
    await f.activate();
    return f;
  } finally {
    fusion.enabled = true;
  }
}

const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 4 });
const ip = fc.constantFrom('10.0.0.1', '10.0.0.2', '192.0.2.7', '198.51.100.9');
const port = fc.constantFrom(22, 53, 80, 443, 8080);
const record = fc.record(
  {
    type: fc.constantFrom('new', 'update', 'destroy'),
    ts: fc.nat(1000),
    id: fc.nat(40),
    proto: maybe(fc.constantFrom('tcp', 'udp', 'icmp')),
    orig: maybe(fc.record({ src: maybe(ip), dst: maybe(ip), sport: maybe(port), dport: maybe(port) })),
    reply: maybe(fc.record({ src: maybe(ip), dport: maybe(port) })),
  },
  { requiredKeys: ['type', 'ts', 'id'] },
);

// Steps over the fields still present: a project narrows what later matches may read.
type Step = { kind: 'match'; pick: number } | { kind: 'project'; mask: number } | { kind: 'sample' };
const FIELDS = ['proto', 'orig.src', 'orig.dst', 'orig.sport', 'orig.dport', 'reply.src', 'id'];
const TESTS: Record<string, string[]> = {
  proto: ['proto == tcp', 'proto != udp'],
  'orig.src': ['orig.src in 10.0.0.0/8', 'orig.src == 192.0.2.7'],
  'orig.dst': ['orig.dst != 10.0.0.1'],
  'orig.sport': ['orig.sport > 53'],
  'orig.dport': ['orig.dport in [80, 443]', 'orig.dport <= 53'],
  'reply.src': ['reply.src in 198.51.100.0/24'],
  id: ['id >= 20'],
};
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('match' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('project' as const), mask: fc.integer({ min: 1, max: 127 }) }),
  fc.constant({ kind: 'sample' as const }),
);

function graph(feed: string, steps: Step[]): string {
  let fields = FIELDS;
  const parts = [`fake(feed=${feed})`];
  for (const s of steps) {
    if (s.kind === 'match') {
      const f = fields[s.pick % fields.length];
      const t = TESTS[f];
      parts.push(`match(${t[s.pick % t.length]})`);
    } else if (s.kind === 'project') {
      const keep = fields.filter((_, i) => s.mask & (1 << i));
      if (keep.length === 0) continue;
      parts.push(`project(${keep.join(', ')})`);
      fields = keep;
    } else if (fields.includes('id')) parts.push('sample(rate=0.5, by=id)');
  }
  return parts.join(' -> ');
}

async function run(graphs: (feed: string) => string[], recs: Rec[], fused: boolean) {
  const fg = new Flowgrab();
  const feed = feedName();
  const flows: FlowHandle[] = [];
  for (const g of graphs(feed)) flows.push(await start(fg, g, fused));
  const outs = flows.map((f) => lastValueFrom(f.records$.pipe(toArray())));
  for (const r of recs) fakeFeed(feed).next(r);
  fakeFeed(feed).complete();
  const got = await Promise.all(outs);
  const stats = flows.map((f) => f.stats().nodes);
  await fg.close();
  return { got, stats };
}

describe('fused steps', () => {
  it('give the same records and per-node stats as one node per step, on random chains and records', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 6 }),
        fc.array(step, { minLength: 1, maxLength: 3 }),
        fc.array(record, { maxLength: 60 }),
        async (chain, tail, recs) => {
          // Two flows: the chain alone, and the chain with more steps, so the second attaches inside the first's run.
          const graphs = (feed: string) => [graph(feed, chain), graph(feed, [...chain, ...tail])];
          const plain = await run(graphs, recs as Rec[], false);
          const fused = await run(graphs, recs as Rec[], true);
          expect(fused.got).toEqual(plain.got);
          expect(JSON.stringify(fused.got)).toBe(JSON.stringify(plain.got));
          expect(fused.stats).toEqual(plain.stats);
          // The stats are real: the source passed on every record.
          expect(fused.stats[0][0].out).toBe(recs.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keep working and counting when a flow sharing the run closes, and when a new one extends it', async () => {
    const fg = new Flowgrab();
    const feed = feedName();
    const head = `fake(feed=${feed}) -> match(proto == tcp)`;
    const a = await start(fg, `${head} -> project(orig.src, orig.dport)`, true);
    const b = await start(fg, `${head} -> match(orig.dport == 443)`, true);
    const recs = [80, 443, 443, 22].map((dport, i) => ({ type: 'new', ts: i, id: i, proto: 'tcp', orig: { dport } }));
    fakeFeed(feed).next(recs[0]);
    await a.close();
    const c = await start(fg, `${head} -> match(orig.dport > 100) -> project(orig.dport)`, true);
    const outB = lastValueFrom(b.records$.pipe(toArray()));
    const outC = lastValueFrom(c.records$.pipe(toArray()));
    for (const r of recs.slice(1)) fakeFeed(feed).next(r);
    fakeFeed(feed).complete();
    expect((await outB).map((r) => r.ts)).toEqual([1, 2]);
    expect(await outC).toEqual([
      { type: 'new', ts: 1, orig: { dport: 443 } },
      { type: 'new', ts: 2, orig: { dport: 443 } },
    ]);
    const io = (f: FlowHandle) => f.stats().nodes.map((n) => [n.node, n.in, n.out]);
    expect(io(b)).toEqual([
      ['fake', 0, 4],
      ['match', 4, 4],
      ['match', 4, 2],
    ]);
    expect(io(c)).toEqual([
      ['fake', 0, 4],
      ['match', 4, 4],
      ['match', 3, 2],
      ['project', 2, 2],
    ]);
    await fg.close();
    expect(fg.stageCount).toBe(0);
  });
});

describe('fused steps with many flows', () => {
  // 20 flows on the first match (10 go on to their own match, 10 take its output), past the inline limit (16).
  it('feed every flow attached to one step, past the inline limit, and the rest when some close', async () => {
    const fg = new Flowgrab();
    const feed = feedName();
    const flows: FlowHandle[] = [];
    for (let i = 0; i < 10; i++)
      flows.push(await start(fg, `fake(feed=${feed}) -> match(ts >= 0) -> match(id >= ${i}) -> project(id)`, true));
    const bare: Promise<Rec[]>[] = [];
    for (let i = 0; i < 10; i++) {
      const f = await start(fg, `fake(feed=${feed}) -> match(ts >= 0)`, true);
      bare.push(lastValueFrom(f.records$.pipe(toArray())));
    }
    const send = (ids: number[]) => {
      for (const id of ids) fakeFeed(feed).next({ type: 'new', ts: id, id });
    };
    send([0, 3, 6]);
    await Promise.all(flows.splice(0, 4).map((f) => f.close()));
    const outs = flows.map((f) => lastValueFrom(f.records$.pipe(toArray())));
    send([5, 9]);
    fakeFeed(feed).complete();
    // Flows 4 … 9 keep ids >= 4 … 9 of everything sent.
    expect((await Promise.all(outs)).map((o) => o.map((r) => r.id))).toEqual([
      [6, 5, 9],
      [6, 5, 9],
      [6, 9],
      [9],
      [9],
      [9],
    ]);
    for (const o of await Promise.all(bare)) expect(o.map((r) => r.id)).toEqual([0, 3, 6, 5, 9]);
    expect(flows.map((f) => f.stats().nodes.map((n) => n.out))).toEqual([
      [5, 5, 3, 3],
      [5, 5, 3, 3],
      [5, 5, 2, 2],
      [5, 5, 1, 1],
      [5, 5, 1, 1],
      [5, 5, 1, 1],
    ]);
    await fg.close();
  });
});

describe('a projection feeding only aggregates that read what it keeps (not run)', () => {
  const AGG = [
    'count(by=orig.src, every=100ms)',
    'count(by=orig, every=100ms)',
    'sum(orig.sport, by=[orig.src, orig.dst], every=50ms)',
    'top(by=orig.dst, n=2, every=200ms)',
    'count(every=300ms)',
  ];
  const tails = fc.array(fc.constantFrom(...AGG.keys()), { minLength: 1, maxLength: 4 });
  const matchOrSample = step.filter((s) => s.kind !== 'project');

  it('gives the same windows and stats as a new record per projection, on random chains, aggregates and records', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(matchOrSample, { maxLength: 3 }),
        tails,
        fc.array(record, { maxLength: 80 }),
        async (chain, aggs, recs) => {
          // Each flow: the random chain, a projection keeping orig.src, orig.dst and orig.sport, then its aggregate.
          const graphs = (feed: string) =>
            aggs.map((a) => `${graph(feed, chain)} -> project(orig.src, orig.dst, orig.sport) -> ${AGG[a]}`);
          const plain = await run(graphs, recs as Rec[], false);
          const fused = await run(graphs, recs as Rec[], true);
          expect(JSON.stringify(fused.got)).toBe(JSON.stringify(plain.got));
          expect(fused.stats).toEqual(plain.stats);
        },
      ),
      { numRuns: 40 },
    );
  });

  const stats = () => ({ node: 'x', path: 'x', in: 0, out: 0, dropped: 0 });

  /** A fused node of one step, project(orig.src): it hands its input on when every child reads only what it keeps. */
  function projection(): FusedNode {
    const node = new FusedNode();
    const proj = lookupNode('project');
    if (proj?.kind !== 'filter' || !proj.step) throw new Error('no project');
    node.append(stats(), proj.step(proj.params.parse({ fields: ['orig.src'] }) as never, {} as never) as never);
    return node;
  }

  it('leaves the outer record as it came when a borrowing child’s call leads back into the projection', () => {
    const node = projection();
    const seen: string[] = [];
    // A borrower that, on its first record, feeds another one through the projection before reading its own.
    const stepper: Stepper = {
      push: (r) => {
        if (seen.length === 0 && (r.orig as Rec).src === 'a') {
          seen.push('-');
          node.push({ type: 'new', ts: 2, orig: { src: 'b' } });
        }
        seen.push((r.orig as Rec).src as string);
      },
    };
    borrowers.set(stepper, ['orig.src', 'ts']);
    node.attachAt(0, new StepNode(stats(), stepper));
    node.push({ type: 'new', ts: 1, orig: { src: 'a' } });
    node.push({ type: 'new', ts: 3, orig: { src: 'c' } });
    expect(seen).toEqual(['-', 'b', 'a', 'c']);
  });

  it('leaves it as it came when that call also changes the children (the function is regenerated meanwhile)', () => {
    const node = projection();
    const seen: Record<string, string[]> = { A: [], B: [], C: [] };
    const borrower = (name: string, first?: (r: Rec) => void) => {
      const s: Stepper = {
        push: (r) => {
          first?.(r);
          seen[name].push((r.orig as Rec).src as string);
        },
      };
      borrowers.set(s, ['orig.src', 'ts']);
      return new StepNode(stats(), s);
    };
    let once = true;
    node.attachAt(
      0,
      borrower('A', (r) => {
        if (!once || (r.orig as Rec).src !== 'a') return;
        once = false;
        node.attachAt(0, borrower('C')); // a flow sharing the step opens: the function is regenerated
        node.push({ type: 'new', ts: 2, orig: { src: 'b' } }); // and the call leads back into the node
      }),
    );
    node.attachAt(0, borrower('B'));
    node.push({ type: 'new', ts: 1, orig: { src: 'a' } });
    node.push({ type: 'new', ts: 3, orig: { src: 'c' } });
    // A's and B's 'a' is still 'a' after the nested call brought 'b'.
    expect(seen).toEqual({ A: ['b', 'a', 'c'], B: ['b', 'a', 'c'], C: ['b', 'c'] });
  });

  it('hands its input on as it came when every child reads only values it keeps, at their paths', () => {
    const node = projection(); // keeps type, ts and orig.src
    const got: Rec[] = [];
    const reader = (reads: string[]) => {
      const s: Stepper = { push: (r) => void got.push(r) };
      borrowers.set(s, reads);
      return new StepNode(stats(), s);
    };
    node.attachAt(0, reader(['orig.src', 'ts']));
    const input = { type: 'new', ts: 1, orig: { src: 'a', dst: 'b' } };
    node.push(input);
    expect(got).toEqual([input]);
    expect(got[0]).toBe(input);
    // A child reading orig (an object the projection makes anew): every child gets the projection.
    node.attachAt(0, reader(['orig', 'ts']));
    node.push(input);
    expect(got.slice(1)).toEqual([
      { type: 'new', ts: 1, orig: { src: 'a' } },
      { type: 'new', ts: 1, orig: { src: 'a' } },
    ]);
    // A step that does not say what it reads gets the projection too.
    const quiet = new FusedNode();
    const proj = lookupNode('project');
    if (proj?.kind !== 'filter' || !proj.step) throw new Error('no project');
    quiet.append(stats(), proj.step(proj.params.parse({ fields: ['orig.src'] }) as never, {} as never) as never);
    const s: Stepper = { push: (r) => void got.push(r) };
    quiet.attachAt(0, new StepNode(stats(), s));
    quiet.push(input);
    expect(got.at(-1)).not.toBe(input);
  });

  it('goes on handing records on after a borrowing child threw', () => {
    const node = projection();
    const records: Rec[] = [];
    const s: Stepper = {
      push: (r) => {
        records.push(r);
        if ((r.orig as Rec).src === 'boom') throw new Error('boom');
      },
    };
    borrowers.set(s, ['orig.src', 'ts']);
    node.attachAt(0, new StepNode(stats(), s));
    const input = (src: string, ts: number) => ({ type: 'new', ts, orig: { src } });
    const sent = [input('x', 2), input('y', 3)];
    expect(() => node.push(input('boom', 1))).toThrow('boom');
    for (const r of sent) node.push(r);
    expect(records.slice(1)).toEqual(sent);
    expect(records[1]).toBe(sent[0]);
  });
});

describe('project', () => {
  const key = fc.constantFrom('a', 'b', 'c', '__proto__', 'constructor');
  const path = fc.array(key, { minLength: 1, maxLength: 3 });
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string(), fc.constant(null), fc.dictionary(key, tie('v'))),
  })).v;

  it('builds the same output as the reference, key order included, and never touches a prototype', () => {
    fc.assert(
      fc.property(fc.array(path, { minLength: 1, maxLength: 5 }), value, (paths, v) => {
        // Records as JSON.parse gives them: `__proto__` may be an own field.
        const r = JSON.parse(JSON.stringify(v)) as Rec;
        const fast = projector(paths)(r);
        const ref = projectRecord(r, paths);
        expect(JSON.stringify(fast)).toBe(JSON.stringify(ref));
        expect(Object.getPrototypeOf(fast)).toBe(Object.prototype);
        expect(Object.keys(Object.prototype)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('reads each path once and allocates one object per level when every value is there', () => {
    const p = projector([['type'], ['ts'], ['orig', 'src'], ['orig', 'dst']]);
    const r = { type: 'new', ts: 5, orig: { src: 'a', dst: 'b', sport: 1 }, reply: {} };
    expect(p(r)).toEqual({ type: 'new', ts: 5, orig: { src: 'a', dst: 'b' } });
    expect(p({ type: 'new', orig: 'x' })).toEqual({ type: 'new' });
    expect(projector([['orig'], ['orig', 'src']])(r)).toEqual({ orig: r.orig });
    expect(r.orig).toEqual({ src: 'a', dst: 'b', sport: 1 });
  });
});
