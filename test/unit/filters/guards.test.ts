/**
 * The filters a policy inserts, tried the way a user would get around them:
 * redaction through lists and address mirrors, batches past the rate limit,
 * a window that hoards records.
 */
import type { OperatorFunction } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { authorize } from '../../../src/auth/authorize.js';
import { parsePolicy } from '../../../src/auth/load.js';
import '../../../src/filters/builtin.js';
import { approxBytes } from '../../../src/filters/lib/aggregate.js';
import { recordCost } from '../../../src/filters/lib/ratelimit.js';
import { compileRedact } from '../../../src/filters/lib/scope.js';
import { GRAPH_LIMITS } from '../../../src/filters/limits.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { printGraph } from '../../../src/filters/print.js';
import { asStepper, type BuildContext, type FilterDef, lookupNode, type Rec } from '../../../src/filters/registry.js';
import { RECORD_FIELDS } from '../../../src/filters/sources.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { DnsCache } from '../../../src/sources/dns/cache.js';
import { operator } from '../../helpers/filter-operator.js';
import { ct } from '../../helpers/records.js';

function timeline(marble: string, values: Record<string, Rec>, make: (s: TestScheduler) => OperatorFunction<Rec, Rec>) {
  const s = new TestScheduler((x, y) => expect(x).toEqual(y));
  const out: [number, Rec][] = [];
  s.run(({ cold }) => {
    cold(marble, values)
      .pipe(make(s))
      .subscribe({ next: (v) => out.push([s.now(), v]) });
  });
  return out;
}

const dnsRecord = {
  type: 'dns',
  kind: 'response',
  client: '10.1.0.5',
  server: '10.1.0.1',
  qname: 'shop.test',
  answers: [
    { name: 'shop.test', type: 'A', ttl: 60, data: '192.0.2.7' },
    { name: 'shop.test', type: 'A', ttl: 60, data: '192.0.2.8' },
  ],
  resolved: [
    { name: 'shop.test', ip: '192.0.2.7', ttl: 60, via: [] },
    { name: 'shop.test', ip: '192.0.2.8', ttl: 60, via: [] },
  ],
};

describe('redact', () => {
  it('removes values through lists, and the answers that carry the same addresses', () => {
    const out = compileRedact(['resolved.ip'])(dnsRecord) as typeof dnsRecord;
    expect(JSON.stringify(out)).not.toMatch(/192\.0\.2/);
    expect(out.resolved).toEqual([
      { name: 'shop.test', ttl: 60, via: [] },
      { name: 'shop.test', ttl: 60, via: [] },
    ]);
    expect(out.answers[0]).toEqual({ name: 'shop.test', type: 'A', ttl: 60 });
    expect(dnsRecord.resolved[0].ip).toBe('192.0.2.7'); // the input is not changed
  });

  it('redacting orig.src also removes the same address in reply.dst (and orig.dst with reply.src)', () => {
    const r = ct(3) as unknown as Rec;
    const out = compileRedact(['orig.src'])(r) as ReturnType<typeof ct>;
    expect(JSON.stringify(out)).not.toContain(ct(3).orig.src);
    expect(out.reply).not.toHaveProperty('dst');
    expect(out.reply.src).toBe('198.51.100.10');
    const both = compileRedact(['orig.dst'])(r) as ReturnType<typeof ct>;
    expect(JSON.stringify(both)).not.toContain('198.51.100.10');
    // An exported flow (nats): its reply tuple rsrc → rdst mirrors dst → src.
    const flow = { type: 'flow', src: '10.1.0.5', dst: '93.184.216.34', rsrc: '93.184.216.34', rdst: '10.1.0.5' };
    expect(compileRedact(['src', 'dst'])(flow)).toEqual({ type: 'flow' });
  });

  it("a policy's redaction follows every source, also one after -> or inside a later fork", () => {
    const policy = parsePolicy(
      JSON.stringify({
        version: 1,
        principals: [{ who: { uid: 9 }, sources: ['*'], filters: ['*'], redact: ['orig.src'] }],
      }),
    );
    const r = authorize(
      parseGraph('conntrack() -> (match(proto == tcp) | conntrack(family=ipv6))'),
      { uid: 9, gid: 9 },
      policy,
    );
    expect(printGraph(r.graph)).toBe(
      '(conntrack() -> redact(fields=[orig.src])) -> (match(proto == tcp) | conntrack(family=ipv6) -> redact(fields=[orig.src]))',
    );
  });
});

describe('grouping keys', () => {
  it('an aggregate may not group by a field of its own output record (it would overwrite it, or lose the key)', () => {
    const fg = new Flowgrab();
    const issues = (g: string) => fg.check(parseGraph(g)).map((i) => i.message);
    expect(issues('conntrack() -> count(by=[type, orig.src], every=1s)')).toEqual([
      'count: by=type: the output record has its own `type` (type, ts, start, end, count); group by another field',
    ]);
    expect(issues('conntrack() -> sum(field=orig.bytes, by=start, every=1s)')[0]).toMatch(/sum: by=start/);
    expect(issues('replay(file=/dev/null) -> top(by=count, every=1s)')[0]).toMatch(/top: by=count/);
    expect(issues('conntrack() -> count(by=[state, orig.src], every=1s)')).toEqual([]);
  });
});

describe('scope on queued packets', () => {
  it('keeps a packet whose ip.src or ip.dst is inside, drops the rest (the packet record nests its addresses)', () => {
    const def = lookupNode('scope') as FilterDef<unknown>;
    const step = asStepper(def.step!(def.params.parse({ cidrs: ['10.0.0.0/8'] }), {} as BuildContext));
    const kept: Rec[] = [];
    const pkt = (src: string, dst: string): Rec => ({ packetId: 1, ip: { src, dst } });
    for (const p of [pkt('10.1.1.1', '192.0.2.1'), pkt('192.0.2.2', '10.9.9.9'), pkt('192.0.2.2', '192.0.2.1')])
      step.push(p, (r) => kept.push(r));
    expect(kept.map((r) => (r.ip as { src: string }).src)).toEqual(['10.1.1.1', '192.0.2.2']);
  });
});

describe('batches and the rate limit', () => {
  it('a window of 600 records through ratelimit(100/s) carries 100 entries; the rest are counted as dropped', () => {
    const batch: Rec = {
      type: 'window',
      ts: 0,
      start: 0,
      end: 1,
      count: 600,
      records: Array.from({ length: 600 }, (_, i) => ({ id: i })),
    };
    let dropped = 0;
    const got = timeline('a 999ms a', { a: batch }, (s) =>
      operator('ratelimit', { rate: 100 }, s, { dropped: (n) => (dropped += n) }),
    );
    expect(got.map(([, r]) => [(r.records as Rec[]).length, r.count, r.truncated])).toEqual([
      [100, 100, 500],
      [100, 100, 500],
    ]);
    expect(dropped).toBe(1000);
  });

  it('batches of batches cost every record they carry: a window of windows is cut to the rate, inside too', () => {
    // 3 inner windows of 40 records each (a window of windows): 120 entries, not 3.
    const inner = (k: number): Rec => ({
      type: 'window',
      ts: k,
      count: 40,
      records: Array.from({ length: 40 }, (_, i) => ({ id: k * 100 + i })),
    });
    const outer: Rec = { type: 'window', ts: 0, count: 3, records: [inner(0), inner(1), inner(2)] };
    expect(recordCost(outer)).toBe(120);
    let dropped = 0;
    const got = timeline('a', { a: outer }, (s) =>
      operator('ratelimit', { rate: 50 }, s, { dropped: (n) => (dropped += n) }),
    );
    const [[, r]] = got;
    const kept = r.records as Rec[];
    // The first inner window whole (40), 10 of the second, the third cut off.
    expect(kept.map((w) => (w.records as Rec[]).length)).toEqual([40, 10]);
    expect([r.count, r.truncated, kept[1].truncated, kept[1].count]).toEqual([2, 1, 30, 10]);
    expect(dropped).toBe(70);
  });

  it('window() through the policy: records per second hold for the entries, not the batches', () => {
    let dropped = 0;
    const a: Rec = { type: 'new', id: 1 };
    const marble = `${'a'.repeat(50)} 949ms |`; // 50 records in the first second, one window at 1s
    const got = timeline(
      marble,
      { a },
      (s) => (src) =>
        src.pipe(
          operator('window', { every: 1000 }, s),
          operator('ratelimit', { rate: 10 }, s, { dropped: (n) => (dropped += n) }),
        ),
    );
    expect(got.map(([, r]) => (r.records as Rec[]).length)).toEqual([10]);
    expect(dropped).toBe(40);
  });

  it('a window keeps at most `max` records in memory', () => {
    let dropped = 0;
    const a: Rec = { type: 'new', id: 1 };
    const got = timeline(`${'a'.repeat(30)} 969ms |`, { a }, (s) =>
      operator('window', { every: 1000, max: 20 }, s, { dropped: (n) => (dropped += n) }),
    );
    expect(got.map(([, r]) => r.count)).toEqual([20]);
    expect(dropped).toBe(10);
  });
});

describe('state a user can make a filter hold', () => {
  it('count() holds at most stateKeys groups over all its open windows (window() as many records); dedupe() remembers at most stateKeys keys', () => {
    const { stepper, drops } = steppers();
    let dropped = 0;
    drops.add = (n) => (dropped += n);
    const n = GRAPH_LIMITS.stateKeys + 5;
    const count = stepper('count', { by: 'id', every: '1h' });
    for (let i = 0; i < n; i++) count.push({ id: i }, () => {});
    const out: Rec[] = [];
    count.complete?.((r) => out.push(r));
    expect(out).toHaveLength(GRAPH_LIMITS.stateKeys);
    expect(dropped).toBe(5);
    const dedupe = stepper('dedupe', { by: 'id', window: '1h' });
    let passed = 0;
    for (let i = 0; i < n; i++) dedupe.push({ id: i }, () => passed++);
    dedupe.push({ id: 1 }, () => passed++); // remembered: dropped
    dedupe.push({ id: n - 1 }, () => passed++); // past the bound: not remembered, passes again
    expect(passed).toBe(n + 1);

    // The bound holds over all the windows a filter has open, not per window: 1 ms windows with 5 minutes'
    // lateness stay open by the hundred (here 101, of 1 000 keys or records each).
    dropped = 0;
    const many = 101_000;
    const narrow = stepper('count', { by: 'id', every: '1ms', lateness: '5m' });
    const groups: Rec[] = [];
    for (let i = 0; i < many; i++) narrow.push({ id: i, ts: Math.floor(i / 1000) }, (r) => groups.push(r));
    expect(dropped).toBe(many - GRAPH_LIMITS.stateKeys);
    expect(groups).toHaveLength(0);
    // Windows that close give their room back: 6 minutes on, the old ones close and new keys are counted again.
    for (let i = 0; i < 1000; i++) narrow.push({ id: i, ts: 360_000 }, (r) => groups.push(r));
    expect(groups).toHaveLength(GRAPH_LIMITS.stateKeys);
    narrow.complete?.((r) => groups.push(r));
    expect(groups).toHaveLength(GRAPH_LIMITS.stateKeys + 1000);
    expect(dropped).toBe(many - GRAPH_LIMITS.stateKeys);
    dropped = 0;
    const windows = stepper('window', { every: '1ms', lateness: '5m' });
    for (let i = 0; i < many; i++) windows.push({ id: i, ts: Math.floor(i / 1000) }, () => {});
    const batches: Rec[] = [];
    windows.complete?.((r) => batches.push(r));
    expect(batches.reduce((n, b) => n + (b.count as number), 0)).toBe(GRAPH_LIMITS.stateKeys);
    expect(dropped).toBe(many - GRAPH_LIMITS.stateKeys);
  });

  it('window() holds at most maxBytes of records over its open windows, as the records weigh, not as they count', () => {
    const { stepper, drops } = steppers();
    let dropped = 0;
    drops.add = (n) => (dropped += n);
    // DNS responses of 2 400 answers each (a 64 KB message is a 326 KB record): 40 of them, 4 MiB allowed.
    const answers = Array.from({ length: 2400 }, (_, i) => ({
      name: 'x.test',
      type: 'A',
      ttl: 60,
      data: `10.0.${i >> 8}.${i & 255}`,
    }));
    const big = approxBytes({ type: 'response', ts: 0, answers });
    expect(big).toBeGreaterThan(200_000);
    const w = stepper('window', { every: '1h', maxBytes: 4 << 20 });
    for (let i = 0; i < 40; i++) w.push({ type: 'response', ts: i, answers }, () => {});
    const batches: Rec[] = [];
    w.complete?.((r) => batches.push(r));
    const kept = batches[0].count as number;
    expect(kept).toBe(Math.floor((4 << 20) / big));
    expect(dropped).toBe(40 - kept);
    // Small records are held by the thousand, as before.
    const small = stepper('window', { every: '1h' });
    for (let i = 0; i < 5000; i++) small.push({ id: i, ts: i }, () => {});
    const out: Rec[] = [];
    small.complete?.((r) => out.push(r));
    expect(out[0].count).toBe(5000);
  });

  it('field lists are bounded: 64 paths a parameter, a 65th is refused with the reason', () => {
    const fields = Array.from({ length: GRAPH_LIMITS.fields + 1 }, (_, i) => `f${i}`);
    for (const name of ['project', 'anonymize', 'redact']) {
      const def = lookupNode(name) as FilterDef<unknown>;
      expect(def.params.safeParse({ fields: fields.slice(0, GRAPH_LIMITS.fields) }).success, name).toBe(true);
      const r = def.params.safeParse({ fields });
      expect(r.success, name).toBe(false);
      expect(JSON.stringify(r.error?.issues), name).toMatch(/expected at most 64 field paths/);
    }
    for (const name of ['count', 'dedupe', 'sample']) {
      const def = lookupNode(name) as FilterDef<unknown>;
      const r = def.params.safeParse({ by: fields, every: '1s', window: '1s', rate: 0.5 });
      expect(JSON.stringify(r.error?.issues), name).toMatch(/expected at most 64 field paths/);
    }
  });
});

/** Filters' steppers built as a graph builds them, with their drops told to `drops.add`. */
function steppers() {
  const drops = { add: (_n: number): unknown => 0 };
  const ctx = {
    path: ['root'],
    input: RECORD_FIELDS.conntrack,
    scheduler: new TestScheduler(() => {}),
    notices: { next: () => {} },
    dropped: (n: number) => drops.add(n),
    dnsCache: () => ({ cache: new DnsCache(), release: () => {} }),
  } as BuildContext;
  const stepper = (name: string, params: Record<string, unknown>) => {
    const def = lookupNode(name) as FilterDef<unknown>;
    return asStepper(def.step!(def.params.parse(params), ctx));
  };
  return { stepper, drops };
}
