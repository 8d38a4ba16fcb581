import { asyncScheduler, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import '../../../src/filters/builtin.js';
import type { FieldCatalog } from '../../../src/filters/fields.js';
import { INTERNED_KEYS, KeyInterner, sharedInterner } from '../../../src/filters/lib/keys.js';
import { asStepper, type BuildContext, lookupNode, type Rec } from '../../../src/filters/registry.js';
import { RECORD_FIELDS } from '../../../src/filters/sources.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { DnsCache } from '../../../src/sources/dns/cache.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';

function ctxFor(input: FieldCatalog): BuildContext {
  return {
    path: ['root'],
    input,
    scheduler: asyncScheduler,
    notices: { next: () => {} },
    dropped: () => {},
    dnsCache: () => ({ cache: new DnsCache(), release: () => {} }),
  };
}

/** Runs records through a count (or `name`) built in `ctx`; returns its windows (flushed at the end). */
function counter(params: Record<string, unknown>, ctx: BuildContext, name = 'count') {
  const def = lookupNode(name);
  if (def?.kind !== 'filter' || !def.step) throw new Error('no count filter');
  const s = asStepper(def.step(def.params.parse(params) as never, ctx));
  const out: Rec[] = [];
  const emit = (r: Rec) => out.push(r);
  const stop = s.start?.(emit);
  return {
    push: (r: Rec) => s.push(r, emit),
    end: () => {
      s.complete?.(emit);
      stop?.();
      return out;
    },
  };
}

const rec = (ts: number, src: string): Rec => ({ type: 'new', ts, orig: { src } });

describe('interned grouping keys', () => {
  it('number keys as a Map would (SameValueZero), and start over past their bound', () => {
    const k = new KeyInterner();
    expect(k.id('a')).toBe(0);
    expect(k.id('b')).toBe(1);
    expect(k.id('a')).toBe(0);
    expect(k.id(Number.NaN)).toBe(k.id(Number.NaN));
    expect(k.id(0)).toBe(k.id(-0));
    expect(k.gen).toBe(0);
    for (let i = 0; k.gen === 0; i++) k.id(`k${i}`);
    expect(k.gen).toBe(1);
    expect(k.id('a')).toBeLessThan(INTERNED_KEYS);
  });

  it('are shared by the aggregates grouping one input by the same fields, and looked up once per record', () => {
    const input: FieldCatalog = new Map(RECORD_FIELDS.conntrack);
    const counts = [1, 2, 3].map((h) => counter({ by: 'orig.src', every: `${h}h` }, ctxFor(input)));
    const srcs = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
    for (let i = 0; i < 300; i++) for (const c of counts) c.push(rec(i, srcs[i % 3]));
    const it = sharedInterner(input, ['orig.src']);
    // Three counts, 300 records: each record's key looked up in the table once.
    expect(it.lookups).toBe(300);
    for (const c of counts)
      expect(c.end().map((w) => [(w.orig as Rec).src, w.count])).toEqual(srcs.map((s) => [s, 100]));
    expect(sharedInterner(input, ['orig.dst'])).not.toBe(it);
    expect(sharedInterner(new Map(input), ['orig.src'])).not.toBe(it);
  });

  it('count right across the interner starting over, in first-record order', () => {
    const input: FieldCatalog = new Map(RECORD_FIELDS.conntrack);
    const a = counter({ by: 'orig.src', every: '1h' }, ctxFor(input));
    const b = counter({ by: 'orig.src', every: '2h' }, ctxFor(input));
    const n = INTERNED_KEYS + 5_000;
    const ref = new Map<string, number>();
    for (let i = 0; i < 2 * n; i++) {
      // Every key twice, the second time after the numbering has started over for many of them.
      const src = `k${(i * 7919) % n}`;
      ref.set(src, (ref.get(src) ?? 0) + 1);
      a.push(rec(i % 1000, src));
      b.push(rec(i % 1000, src));
    }
    expect(sharedInterner(input, ['orig.src']).gen).toBeGreaterThan(0);
    const want = [...ref].map(([s, c]) => [s, c]);
    expect(a.end().map((w) => [(w.orig as Rec).src, w.count])).toEqual(want);
    expect(b.end().map((w) => [(w.orig as Rec).src, w.count])).toEqual(want);
  });
});

describe('grouped aggregates keep their groups as columns', () => {
  it('sum and count agree with a plain Map over thousands of keys (past the first slots), fractions included', () => {
    const input: FieldCatalog = new Map(RECORD_FIELDS.conntrack);
    const sum = counter({ field: 'orig.bytes', by: 'orig.src', every: '1h' }, ctxFor(input), 'sum');
    const count = counter({ by: 'orig.src', every: '1h' }, ctxFor(input));
    const ref = new Map<string, { sum: number; count: number }>();
    for (let i = 0; i < 30_000; i++) {
      const src = `10.${(i * 7) % 23}.${(i * 13) % 211}.1`; // 4 853 keys, in an order that jumps about
      const bytes = (i % 17) + 0.25;
      const e = ref.get(src) ?? { sum: 0, count: 0 };
      ref.set(src, { sum: e.sum + bytes, count: e.count + 1 });
      const r: Rec = { type: 'new', ts: i % 1000, orig: { src, bytes } };
      sum.push(r);
      count.push(r);
    }
    const want = [...ref];
    expect(ref.size).toBeGreaterThan(4 * 1024);
    expect(sum.end().map((w) => [(w.orig as Rec).src, { sum: w.sum, count: w.count }])).toEqual(want);
    expect(count.end().map((w) => [(w.orig as Rec).src, w.count])).toEqual(want.map(([k, v]) => [k, v.count]));
  });
});

describe('windows past the slotted ones', () => {
  it('count right with 10 windows open at once (4 slotted, 6 by key), the numbering starting over meanwhile', () => {
    const input: FieldCatalog = new Map(RECORD_FIELDS.conntrack);
    const c = counter({ by: 'orig.src', every: '1s', lateness: '5m' }, ctxFor(input));
    const other = counter({ by: 'orig.src', every: '1h' }, ctxFor(input)); // shares the interner, moves it on
    const ref = new Map<number, Map<string, number>>();
    const n = 2 * INTERNED_KEYS + 10_000;
    for (let i = 0; i < n; i++) {
      const w = (i * 7) % 10; // each record to one of 10 windows, all open (lateness 5 minutes)
      const src = i % 2 === 0 ? `new${i}` : `k${i % 500}`; // 75 000 keys: the numbering starts over
      const win = ref.get(w) ?? new Map<string, number>();
      win.set(src, (win.get(src) ?? 0) + 1);
      ref.set(w, win);
      const r: Rec = { type: 'new', ts: w * 1000 + (i % 1000), orig: { src } };
      c.push(r);
      other.push(r);
    }
    expect(sharedInterner(input, ['orig.src']).gen).toBeGreaterThan(0);
    const got = new Map<number, [unknown, unknown][]>();
    for (const w of c.end()) {
      const list = got.get(Number(w.start) / 1000) ?? [];
      list.push([(w.orig as Rec).src, w.count]);
      got.set(Number(w.start) / 1000, list);
    }
    for (let w = 0; w < 10; w++) expect(got.get(w)).toEqual([...(ref.get(w) ?? [])]);
    other.end();
  });
});

describe('flows sharing a prefix, each with its own aggregate', () => {
  /** Windows of each graph tail after one shared prefix: all in one Flowgrab, or each alone in its own. */
  async function windows(tails: string[], together: boolean): Promise<Rec[][]> {
    const feed = `keys${process.pid}x${Math.random().toString(36).slice(2)}`;
    const fgs = tails.map(() => new Flowgrab());
    const outs: Promise<Rec[]>[] = [];
    for (const [i, tail] of tails.entries()) {
      const f = (together ? fgs[0] : fgs[i]).create({ bufferRecords: 100_000 });
      f.populate(`fake(feed=${feed}) -> match(proto == tcp) -> project(orig.src, orig.dport) -> ${tail}`);
      await f.instantiate();
      await f.activate();
      outs.push(lastValueFrom(f.records$.pipe(toArray())));
    }
    const srcs = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];
    for (let i = 0; i < 3_000; i++)
      fakeFeed(feed).next({
        type: 'new',
        ts: i * 7,
        proto: i % 4 ? 'tcp' : 'udp',
        orig: { src: srcs[(i * 31) % 5], dport: [80, 443, 22][i % 3] },
      });
    fakeFeed(feed).complete();
    const got = await Promise.all(outs);
    for (const fg of fgs) await fg.close();
    return got;
  }

  it('give the same windows as each flow alone', async () => {
    const tails = [
      'count(by=orig.src, every=1s)',
      'count(by=orig.src, every=3s)',
      'sum(orig.dport, by=orig.src, every=2s)',
      'top(by=orig.src, n=2, every=5s)',
      'count(by=[orig.src, orig.dport], every=4s)',
    ];
    const alone = await windows(tails, false);
    const together = await windows(tails, true);
    expect(together).toEqual(alone);
    expect(alone.every((w) => w.length > 0)).toBe(true);
  });
});
