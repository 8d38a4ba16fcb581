/**
 * Graph runtime benchmark (issue: flow handles). 1 000 000 synthetic
 * ConntrackRecords through a 4-stage graph
 *   match(proto == tcp && orig.dport in [80,443]) -> sample(rate=0.5, by=id) -> project(orig.src, orig.dst) -> count(by=orig.src)
 * compiled by flowgrab (fed by a source that emits like the kernel sources:
 * Subscriber.next per record), vs a hand-written loop doing the same, vs the naive
 * chain of RxJS operators with an interpreted predicate; and 8 flows sharing
 * the prefix vs 1 flow. The hand loop and flowgrab with and without fusing
 * plain steps (fuse.ts) run in turns, `--runs N` rounds (default 5), and
 * report medians (the machine may be loaded: turns spread the load over all
 * three); the others likewise. The same work as a long-running program does
 * it (one flow created once and a hand loop that keeps its maps, each run a
 * further pass of the records through them) runs first, alone in the
 * process, and again after the new flows (V8's feedback for the steps'
 * shared code has then seen theirs too). Times are
 * process CPU (all threads, GC included) read from /proc; ratios are
 * throughput ratios.
 */
import { filter, from, lastValueFrom, map, Observable, reduce, type Subscriber } from 'rxjs';
import { z } from 'zod';
import { interpretMatch } from '../src/filters/expr/compile.js';
import { parseMatchExpr } from '../src/filters/expr/parse.js';
import { projectRecord } from '../src/filters/lib/project.js';
import { unitHash } from '../src/filters/lib/sample.js';
import { getPath } from '../src/filters/params.js';
import { type Rec, registerSource } from '../src/filters/registry.js';
import { RECORD_FIELDS } from '../src/filters/sources.js';
import { Flowgrab } from '../src/flow/flowgrab.js';
import { fusion } from '../src/flow/fuse.js';
import type { ConntrackRecord } from '../src/sources/conntrack/record.js';
import { fakeFeed } from '../src/testing/fake-source.js';
import { benchRuns, fmt, median, procCpuMs, verdict } from './lib.js';

const N = Number(process.env.FG_BENCH_RECORDS ?? 1_000_000);
const EXPR = 'proto == tcp && orig.dport in [80,443]';

function records(): ConntrackRecord[] {
  const protos = ['tcp', 'tcp', 'udp', 'tcp'];
  const ports = [80, 443, 22, 443, 8080];
  return Array.from({ length: N }, (_, i) => ({
    type: 'update' as const,
    id: i % 20_000,
    family: 'ipv4' as const,
    proto: protos[i & 3],
    protonum: 6,
    orig: {
      src: `10.0.${(i >> 8) & 63}.${i & 255}`,
      dst: `198.51.100.${i % 50}`,
      sport: 30000 + (i % 20000),
      dport: ports[i % 5],
      packets: i & 15,
      bytes: i & 1023,
    },
    reply: {
      src: `198.51.100.${i % 50}`,
      dst: `10.0.${(i >> 8) & 63}.${i & 255}`,
      sport: ports[i % 5],
      dport: 30000 + (i % 20000),
    },
    status: ['ASSURED'],
    ts: i,
  }));
}

/** One case's line; `out` is its number of outputs (groups), negative for a pass that ends nothing. */
function show(label: string, ms: number, out: number): void {
  console.log(
    `  ${label.padEnd(44)} ${fmt(ms, 0).padStart(6)} ms CPU  ${fmt(N / ms / 1000, 2)} M records/CPU-s  ${out < 0 ? '(its window stays open)' : `(out ${out})`}`,
  );
}

/** CPU time of the process (every thread, so GC helpers count) from /proc while `f` runs: the load of other work on the machine moves wall time far more than CPU time. */
async function time(f: () => Promise<number> | number): Promise<[number, number]> {
  const t0 = procCpuMs();
  const out = await f();
  return [procCpuMs() - t0, out];
}

/**
 * Rounds run first and not measured (FG_BENCH_GRAPH_WARMUP, default 0): with 3, the JIT has settled for every
 * case (a new flow's closures cost a deoptimization or two in each of the first runs), as a benchmark of a
 * JIT-compiled runtime usually lets it.
 */
const WARMUP_ROUNDS = Number(process.env.FG_BENCH_GRAPH_WARMUP ?? 0);

/** Runs the cases in turns, `rounds` times; prints and returns each one's median time. */
async function rounds(rounds: number, cases: [string, () => Promise<number> | number][]): Promise<number[]> {
  const ms: number[][] = cases.map(() => []);
  const outs: number[] = [];
  for (let i = -WARMUP_ROUNDS; i < rounds; i++) {
    for (const [j, [, f]] of cases.entries()) {
      const [t, out] = await time(f);
      if (i >= 0) ms[j].push(t);
      outs[j] = out;
    }
  }
  return cases.map(([label], j) => {
    show(label, median(ms[j]), outs[j]);
    return median(ms[j]);
  });
}

async function unfused<T>(f: () => Promise<T>): Promise<T> {
  fusion.enabled = false;
  try {
    return await f();
  } finally {
    fusion.enabled = true;
  }
}

function handLoop(recs: ConntrackRecord[]): number {
  return countInto(recs, new Map(), new Map());
}

/** The hand loop with its state (decisions and counts) kept from one call to the next, as a long-running program keeps it. */
function handState(): ((recs: ConntrackRecord[]) => number) & { tally: () => Tally } {
  const decided = new Map<number, boolean>();
  const counts = new Map<string, number>();
  const tally = (): Tally => ({ groups: counts.size, records: [...counts.values()].reduce((a, b) => a + b, 0) });
  return Object.assign((recs: ConntrackRecord[]) => countInto(recs, decided, counts), { tally });
}

function countInto(recs: ConntrackRecord[], decided: Map<number, boolean>, counts: Map<string, number>): number {
  for (const r of recs) {
    if (r.proto !== 'tcp' || (r.orig.dport !== 80 && r.orig.dport !== 443)) continue;
    // Decisions by the id itself (a number), the string hashed only for a new id: as sample(by=id) keeps them.
    const k = r.id;
    let keep = decided.get(k);
    if (keep === undefined) {
      keep = unitHash(String(k)) < 0.5;
      decided.set(k, keep);
    }
    if (!keep) continue;
    const p = { type: r.type, ts: r.ts, orig: { src: r.orig.src, dst: r.orig.dst } };
    counts.set(p.orig.src, (counts.get(p.orig.src) ?? 0) + 1);
  }
  return counts.size;
}

async function naive(recs: ConntrackRecord[]): Promise<number> {
  const ast = parseMatchExpr(EXPR);
  const paths = ['type', 'ts', 'orig.src', 'orig.dst'].map((p) => p.split('.'));
  const counts = await lastValueFrom(
    from(recs).pipe(
      filter((r) => interpretMatch(ast, r)),
      filter((r) => unitHash(String(getPath(r, 'id'))) < 0.5),
      map((r) => projectRecord(r as never, paths)),
      reduce(
        (m, r) => m.set(String(getPath(r, 'orig.src')), (m.get(String(getPath(r, 'orig.src'))) ?? 0) + 1),
        new Map<string, number>(),
      ),
    ),
  );
  return counts.size;
}

/** Subscribers of `benchrecords` sources, by run: each run feeds its flows through it (see feed). */
const subscribers = new Map<string, Subscriber<Rec>>();
/**
 * The bench's records as a graph source that emits like the kernel sources do: sub.next per record, no Subject.
 * It emits what it is fed, once every flow of the run is attached and active.
 */
registerSource({
  name: 'benchrecords',
  description: "the graph benchmark's synthetic conntrack records",
  params: z.object({ run: z.string() }).strict(),
  fields: RECORD_FIELDS.conntrack,
  create: (p) =>
    new Observable<Rec>((sub) => {
      subscribers.set(p.run, sub);
      return () => subscribers.delete(p.run);
    }),
});

/** The subscriber of run `run`'s source. */
function subscriberOf(run: string): Subscriber<Rec> {
  const sub = subscribers.get(run);
  if (!sub) throw new Error(`benchrecords(run="${run}") did not subscribe`);
  return sub;
}

/** One pass of `recs` into a source's subscriber, an indexed loop (`for…of` took an iterator result per record). */
function feed(sub: Subscriber<Rec>, recs: ConntrackRecord[]): void {
  for (let i = 0; i < recs.length; i++) sub.next(recs[i] as never);
}

/** The benchmark's 4-stage graph from `source`, counting in windows of `hours`. */
const graphText = (source: string, hours: number) =>
  `${source} -> match(${EXPR}) -> sample(rate=0.5, by=id) -> project(orig.src, orig.dst) -> count(by=orig.src, every=${hours}h)`;

/** What a run's counting left: groups, and records counted in them. */
interface Tally {
  groups: number;
  records: number;
}

/**
 * One flow of the 4-stage graph that lives through every pass: `pass()` runs `recs` through it once more (records
 * are not completed), `end()` completes the source and closes the flow, resolving with what its window counted.
 */
async function longLived(): Promise<{ pass: (recs: ConntrackRecord[]) => number; end: () => Promise<Tally> }> {
  const fg = new Flowgrab();
  const run = `bench${Math.random()}`;
  const f = fg.create({ bufferRecords: 1_000_000 });
  f.populate(graphText(`benchrecords(run="${run}")`, 1));
  await f.instantiate();
  await f.activate();
  const out = lastValueFrom(
    f.records$.pipe(
      reduce((t, r) => ({ groups: t.groups + 1, records: t.records + Number(r.count) }), { groups: 0, records: 0 }),
    ),
  );
  const sub = subscriberOf(run);
  return {
    pass: (recs) => {
      feed(sub, recs);
      return -1;
    },
    end: async () => {
      sub.complete();
      const t = await out;
      await fg.close();
      return t;
    },
  };
}

/**
 * `flows` flows of the 4-stage graph over `recs`. Fed by `benchrecords` (emits like a kernel source), or with
 * `subject`, through a fake feed (an RxJS Subject, as tests feed graphs: Subject.next costs per record too).
 */
async function flowgrab(recs: ConntrackRecord[], flows: number, sameTail = false, subject = false): Promise<number> {
  const fg = new Flowgrab();
  const run = `bench${Math.random()}`;
  const source = subject ? `fake(feed="${run}")` : `benchrecords(run="${run}")`;
  const handles = [];
  for (let i = 0; i < flows; i++) {
    const f = fg.create({ bufferRecords: 1_000_000 });
    f.populate(graphText(source, sameTail ? 1 : i + 1));
    await f.instantiate();
    handles.push(f);
  }
  const outs: Promise<number>[] = [];
  for (const f of handles) {
    await f.activate();
    outs.push(lastValueFrom(f.records$.pipe(reduce((n) => n + 1, 0))));
  }
  if (subject) {
    const s = fakeFeed(run);
    for (const r of recs) s.next(r as never);
    s.complete();
  } else {
    const sub = subscriberOf(run);
    feed(sub, recs);
    sub.complete();
  }
  const n = await Promise.all(outs);
  await fg.close();
  return n[0];
}

/**
 * The long-lived case: one flow created once and the hand loop keeping its maps, `runs` passes of the records
 * through each in turns (no setup per run; a key's first record was in pass one). `when`: before or after the
 * other cases ran in this process. Checks that both counted the same; returns their median times per pass.
 */
async function keptRounds(recs: ConntrackRecord[], runs: number, when: 'alone' | 'after'): Promise<number[]> {
  const flow = await longLived();
  const hands = handState();
  const label = when === 'alone' ? '(alone)' : '(after the rest)';
  const times = await rounds(runs, [
    [`hand loop, state kept, per pass ${label}`, () => hands(recs)],
    [`flowgrab, long-lived flow, per pass ${label}`, () => flow.pass(recs)],
  ]);
  const kept = await flow.end();
  // Every pass counted on both sides (none late, none lost): the same groups and the same number of records.
  const theirs = hands.tally();
  if (kept.groups !== theirs.groups || kept.records !== theirs.records)
    throw new Error(`the long-lived flow counted ${JSON.stringify(kept)}, the hand loop ${JSON.stringify(theirs)}`);
  return times;
}

export async function benchGraph(): Promise<void> {
  const recs = records();
  // FG_BENCH_GRAPH_ONLY=1 (or 8): just that many flowgrab flows, 5 times, for a profile; =turns: the first two
  // tables only; =kept: the long-lived flow and its hand loop only.
  const only = process.env.FG_BENCH_GRAPH_ONLY;
  if (only && only !== 'turns' && only !== 'kept') {
    for (let i = 0; i < benchRuns(); i++)
      show(`flowgrab, ${only} flow(s)`, ...(await time(() => flowgrab(recs, Number(only)))));
    return;
  }
  console.log(`graph runtime: ${N} synthetic records, 4 stages (match → sample by key → project → count by key)`);
  const runs = benchRuns();
  console.log(
    `  CPU time from /proc (all threads) per run, median of ${runs} runs taken in turns (the machine may be loaded)`,
  );
  // The same work as a long-running program does it, first with no other flow having run in the process.
  const [handAlone, ourAlone] = await keptRounds(recs, runs, 'alone');
  if (only === 'kept') {
    console.log(`  one long-lived flow vs the hand loop keeping its state: ${fmt(handAlone / ourAlone, 2)}×`);
    return;
  }
  const [hand, ours, plain, subj] = await rounds(runs, [
    ['hand-written loop', () => handLoop(recs)],
    ['flowgrab compiled graph (1 flow)', () => flowgrab(recs, 1)],
    ['flowgrab, 1 flow, steps not fused', () => unfused(() => flowgrab(recs, 1))],
    ['flowgrab, 1 flow, fed through a Subject', () => flowgrab(recs, 1, false, true)],
  ]);
  // Again, after the flows above: the code of every flow's steps (the windows, the tests) is shared, and V8's
  // feedback for it has seen theirs too.
  const [handAfter, ourAfter] = await keptRounds(recs, runs, 'after');
  if (only === 'turns') return;
  const [chain, eight, same] = await rounds(runs, [
    ['naive RxJS chain, interpreted predicate', () => naive(recs)],
    ['flowgrab, 8 flows: shared prefix, own count', () => flowgrab(recs, 8)],
    ['flowgrab, 8 flows with the same graph', () => flowgrab(recs, 8, true)],
  ]);
  console.log(
    `  flowgrab vs hand loop throughput, a new flow per run (setup, each key's first record and the JIT's view of a new flow included): ${fmt(hand / ours, 2)}× fused, ${fmt(hand / plain, 2)}× not fused (goal ≥ 0.8×: ${verdict(hand / ours >= 0.8)}); fed through an RxJS Subject as tests do ${fmt(hand / subj, 2)}×`,
  );
  console.log(
    `  flowgrab vs hand loop throughput, one long-lived flow (each run a pass through the same flow and maps): ${fmt(handAlone / ourAlone, 2)}× alone in its process (goal ≥ 0.8×: ${verdict(handAlone / ourAlone >= 0.8)}); ${fmt(handAfter / ourAfter, 2)}× after the flows above`,
  );
  console.log(
    `  flowgrab vs naive chain throughput: ${fmt(chain / ours, 2)}× (goal ≥ 3×: ${verdict(chain / ours >= 3)})`,
  );
  console.log(
    `  8 flows sharing a prefix cost ${fmt(eight / ours, 2)}× one flow with their own count stage, ${fmt(same / ours, 2)}× with the same graph (goal ≤ 2×: ${verdict(eight / ours <= 2 && same / ours <= 2)})`,
  );
}
