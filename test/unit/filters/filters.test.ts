import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { lastValueFrom, type OperatorFunction, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { withReplayOpener } from '../../../src/filters/replay.js';
import '../../../src/filters/builtin.js';
import { prefixPreserving } from '../../../src/filters/lib/anonymize.js';
import type { Rec } from '../../../src/filters/registry.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { DnsCache } from '../../../src/sources/dns/cache.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';
import { operator } from '../../helpers/filter-operator.js';
import { ct } from '../../helpers/records.js';
import { until } from '../../helpers/wait.js';

const rec = (id: number, src = `10.0.0.${id}`, ts = 0): Rec => ({
  type: 'new',
  id,
  ts,
  orig: { src, dst: '1.1.1.1', bytes: 10 * id },
});

/** Runs `marble` (cold, virtual time) through `op` and returns [frame, value] pairs, completion as [frame, '|']. */
function timeline(
  marble: string,
  values: Record<string, Rec>,
  make: (s: TestScheduler) => OperatorFunction<Rec, Rec>,
): [number, unknown][] {
  const s = new TestScheduler((x, y) => expect(x).toEqual(y));
  const out: [number, unknown][] = [];
  s.run(({ cold }) => {
    cold(marble, values)
      .pipe(make(s))
      .subscribe({ next: (v) => out.push([s.now(), v]), complete: () => out.push([s.now(), '|']) });
  });
  return out;
}

describe('time-based filters (marble tests, virtual time)', () => {
  // Records carry ts equal to the frame they arrive at (a live source), lateness 0 unless said.
  it('count(by, every) emits one record per key per event-time window, and flushes at completion', () => {
    const got = timeline('a b a 7ms c 2ms |', { a: rec(1, 'x', 0), b: rec(2, 'y', 1), c: rec(3, 'x', 10) }, (s) =>
      operator('count', { by: 'orig.src', every: '10ms', lateness: 0 }, s),
    );
    // a@0 b@1 a'@2 (ts of the first a: 0), c@10 (ts 10) closes [0, 10); completion at 13 flushes [10, 20).
    expect(got).toEqual([
      [10, { type: 'count', ts: 10, start: 0, end: 10, orig: { src: 'x' }, count: 2 }],
      [10, { type: 'count', ts: 10, start: 0, end: 10, orig: { src: 'y' }, count: 1 }],
      [13, { type: 'count', ts: 20, start: 10, end: 20, orig: { src: 'x' }, count: 1 }],
      [13, '|'],
    ]);
  });

  it('sum and top aggregate a numeric field per window', () => {
    const v = { a: rec(1, 'x', 0), b: rec(5, 'y', 1), c: rec(2, 'x', 2) };
    expect(
      timeline('abc 6ms |', v, (s) =>
        operator('sum', { field: 'orig.bytes', by: 'orig.src', every: '5ms', lateness: 0 }, s),
      ),
    ).toEqual([
      [5, { type: 'sum', ts: 5, start: 0, end: 5, orig: { src: 'x' }, sum: 30, count: 2 }],
      [5, { type: 'sum', ts: 5, start: 0, end: 5, orig: { src: 'y' }, sum: 50, count: 1 }],
      [9, '|'],
    ]);
    expect(
      timeline('abc 6ms |', v, (s) =>
        operator('top', { by: 'orig.src', n: 1, every: '5ms', lateness: 0, field: 'orig.bytes' }, s),
      ),
    ).toEqual([
      [5, { type: 'top', ts: 5, start: 0, end: 5, items: [{ orig: { src: 'y' }, count: 1, sum: 50 }] }],
      [9, '|'],
    ]);
  });

  it('window(every) batches records per window', () => {
    const [a, b, c] = [rec(1, 'x', 0), rec(1, 'x', 1), rec(1, 'x', 5)];
    expect(timeline('ab 3ms c|', { a, b, c }, (s) => operator('window', { every: '4ms', lateness: 0 }, s))).toEqual([
      [4, { type: 'window', ts: 4, start: 0, end: 4, count: 2, records: [a, b] }],
      [6, { type: 'window', ts: 8, start: 4, end: 8, count: 1, records: [c] }],
      [6, '|'],
    ]);
  });

  it('dedupe drops repeats of a key within its window', () => {
    const a = rec(1);
    expect(
      timeline('a a 5ms a 20ms a|', { a }, (s) => operator('dedupe', { by: 'orig.src', window: '10ms' }, s)),
    ).toEqual([
      [0, a],
      [28, a],
      [29, '|'],
    ]);
  });

  it('ratelimit keeps a token-bucket rate and counts what it drops', () => {
    const a = rec(1);
    let dropped = 0;
    const got = timeline('(aaaa) 1ms a 2ms (aaa)|', { a }, (s) =>
      operator('ratelimit', { rate: 1000, burst: 2 }, s, { dropped: (n) => (dropped += n) }),
    );
    expect(got.map(([t]) => t)).toEqual([0, 0, 7, 10, 10, 15]);
    expect(dropped).toBe(3);
  });
});

describe('record-shaping filters', () => {
  it('project keeps the named paths in their nesting, plus type and ts', async () => {
    const out = await fakeOnce([ct(1)], 'project(orig.dst, reply.sport)');
    expect(out).toEqual([{ type: 'new', ts: ct(1).ts, orig: { dst: '198.51.100.10' }, reply: { sport: 443 } }]);
  });

  it('sample by key keeps or drops whole flows, deterministically', async () => {
    const recs = Array.from({ length: 400 }, (_, i) => ct(i % 40, { ts: i }));
    const out = await fakeOnce(recs, 'sample(rate=0.5, by=id, seed=s1)');
    const kept = new Set(out.map((r) => r.id));
    expect(kept.size).toBeGreaterThan(5);
    expect(kept.size).toBeLessThan(35);
    expect(out).toHaveLength(kept.size * 10); // every record of a kept flow
    const again = await fakeOnce(recs, 'sample(rate=0.5, by=id, seed=s1)');
    expect(again).toEqual(out);
  });

  it('anonymize preserves shared prefixes, is keyed, and round-trips the address family', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), (a, b) => {
        const common = commonPrefix4(a, b);
        const [x, y] = [prefixPreserving(a, 'k1-secret'), prefixPreserving(b, 'k1-secret')];
        expect(commonPrefix4(x, y)).toBe(common);
      }),
      { numRuns: 100 },
    );
    expect(prefixPreserving('10.1.2.3', 'k1-secret')).not.toBe(prefixPreserving('10.1.2.3', 'k2-secret'));
    expect(prefixPreserving('fd00::1', 'k1-secret')).toMatch(/:/);
  });

  it('enrich names addresses from the DNS cache', async () => {
    const cache = new DnsCache();
    cache.set('198.51.100.10', 'server.wan.test', 60);
    const fg = new Flowgrab({ dnsCache: () => ({ cache, release: () => {} }) });
    const f = fg.create();
    f.populate('fake(feed=enrich) -> enrich()');
    await f.instantiate();
    await f.activate();
    const got = lastValueFrom(f.records$.pipe(toArray()));
    fakeFeed('enrich').next(ct(1));
    await until(() => f.stats().buffer.delivered === 1, 'the enriched record');
    await fg.close();
    expect((await got)[0].names).toEqual({ 'orig.dst': ['server.wan.test'] });
  });

  it('enrich(trust=…) asks for a cache that also learns from those servers; anything but addresses is refused', async () => {
    const asked: unknown[][] = [];
    const fg = new Flowgrab({
      dnsCache: (...a) => {
        asked.push(a);
        return { cache: new DnsCache(), release: () => {} };
      },
    });
    const f = fg.create().populate('fake(feed=trust) -> enrich(trust=[192.168.1.53, "2001:db8::53"])');
    await f.instantiate();
    expect(asked).toEqual([[undefined, 300, ['192.168.1.53', '2001:db8::53']]]);
    const bad = fg.create().populate('fake(feed=trust) -> enrich(trust=[resolver.lan])');
    await expect(bad.instantiate()).rejects.toMatchObject({ issues: [{ code: 'bad_parameter' }] });
    await fg.close();
  });

  it('replay(file) feeds recorded records through a graph, checked against the recorded sources’ fields', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-replay-'));
    const file = join(dir, 'rec.ndjson');
    const header = {
      flowgrab: 'recording',
      version: 1,
      host: 'h',
      started: 0,
      sources: [{ name: 'conntrack', params: {} }],
    };
    writeFileSync(file, [header, ct(1), ct(2, { proto: 'udp' }), ct(3)].map((x) => JSON.stringify(x)).join('\n'));
    const fg = new Flowgrab();
    const f = fg.create();
    f.populate(`replay(file="${file}") -> match(proto == tcp) -> project(id)`);
    await f.instantiate();
    const got = lastValueFrom(f.records$.pipe(toArray()));
    await f.activate();
    expect((await got).map((r) => r.id)).toEqual([1, 3]);
    const bad = fg.create();
    bad.populate(`replay(file="${file}") -> match(qname == x)`);
    await expect(bad.instantiate()).rejects.toMatchObject({ issues: [{ code: 'unknown_field' }] });
    // Under another opener (flowgrabd's, which opens as the client) the checker never peeks at the file itself.
    const fg2 = new Flowgrab();
    const peeked = fg2.create();
    peeked.populate(`replay(file="${file}") -> match(qname == x)`);
    await withReplayOpener(
      () => {
        throw new Error('opened');
      },
      () => peeked.instantiate(),
    );
    expect(peeked.state).toBe('instantiated');
    await fg2.close();
    await fg.close();
  });
});

function commonPrefix4(a: string, b: string): number {
  const n = (s: string) => s.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const x = (n(a) ^ n(b)) >>> 0;
  return x === 0 ? 32 : Math.clz32(x);
}

/** Runs records through `fake -> tail` and resolves with everything it output. */
async function fakeOnce(recs: Rec[], tail: string): Promise<Rec[]> {
  const name = `once${Math.random().toString(36).slice(2)}`;
  const fg = new Flowgrab();
  const f = fg.create();
  f.populate(`fake(feed=${name}) -> ${tail}`);
  await f.instantiate();
  await f.activate();
  const out = lastValueFrom(f.records$.pipe(toArray()));
  for (const r of recs) fakeFeed(name).next(r);
  fakeFeed(name).complete();
  return out;
}
