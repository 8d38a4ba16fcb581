import { firstValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { GraphError } from '../../../src/filters/errors.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import type { LossNotice } from '../../../src/flow/handle.js';
import { fakeFeed, fakeSubscriptions } from '../../../src/testing/fake-source.js';
import { ct } from '../../helpers/records.js';
import { until } from '../../helpers/wait.js';

async function start(fg: Flowgrab, graph: string, opts = {}) {
  const f = fg.create(opts);
  f.populate(graph);
  await f.instantiate();
  await f.activate();
  return f;
}

describe('flow runtime', () => {
  it('populate extends the text; records flow once active', async () => {
    const fg = new Flowgrab();
    const f = fg.create({ name: 'web' });
    f.populate('fake(feed=ext) -> match(orig.dport in [80, 443])');
    f.populate('-> project(orig.src)');
    await f.instantiate();
    const got = firstValueFrom(f.records$.pipe(take(2), toArray()));
    await f.activate();
    for (const r of [ct(1), ct(2, { orig: { src: 'x', dst: 'y', dport: 22 } }), ct(3)]) fakeFeed('ext').next(r);
    expect(await got).toEqual([
      { type: 'new', ts: ct(1).ts, orig: { src: '10.1.0.1' } },
      { type: 'new', ts: ct(3).ts, orig: { src: '10.1.0.3' } },
    ]);
    await fg.close();
  });

  it('computes a shared prefix once for many flows, and releases it with the last', async () => {
    const fg = new Flowgrab();
    const before = fakeSubscriptions.get('shared') ?? 0;
    const flows = await Promise.all(
      ['-> project(orig.src)', '-> count(every=1h)', '-> sample(rate=1)'].map((tail) =>
        start(fg, `fake(feed=shared) -> match(proto == tcp) ${tail}`),
      ),
    );
    expect(fakeSubscriptions.get('shared')).toBe(before + 1);
    for (let i = 0; i < 100; i++) fakeFeed('shared').next(ct(i));
    await until(() => flows[0].stats().buffer.delivered === 100, 'the first flow to deliver 100 records');
    const matchStats = flows.map((f) => f.stats().nodes.find((n) => n.node === 'match')!);
    // One evaluation per record, however many flows read it.
    expect(matchStats.map((m) => m.in)).toEqual([100, 100, 100]);
    expect(flows[0].stats().buffer.delivered).toBe(100);
    expect(fg.stageCount).toBe(5); // fake, match, and one tail each
    await flows[0].close();
    expect(fg.stageCount).toBe(4);
    await fg.close();
    expect(fg.stageCount).toBe(0);
  });

  it('isolates a slow reader: its buffer drops (counted, reported), the fast flow gets everything', async () => {
    const fg = new Flowgrab();
    const fast = await start(fg, 'fake(feed=slow) -> match(proto == tcp)');
    const slow = await start(fg, 'fake(feed=slow) -> match(proto == tcp) -> project(id)', {
      bufferRecords: 50,
      overflow: 'drop-oldest',
    });
    const fastGot: number[] = [];
    fast.records$.subscribe((r) => fastGot.push(r.id as number));
    const lost: LossNotice[] = [];
    slow.lost$.subscribe((n) => lost.push(n));
    const it = slow[Symbol.asyncIterator]();
    const first = it.next(); // the reader asks for one record, then dawdles
    for (let i = 0; i < 1000; i++) fakeFeed('slow').next(ct(i));
    await until(() => fastGot.length === 1000, 'the fast flow to get all 1000 records');
    expect((await first).value).toMatchObject({ type: 'new' });
    const s = slow.stats();
    expect(s.buffer.highWater).toBeLessThanOrEqual(50);
    await slow.close();
    const dropped = lost.filter((n) => n.where === 'reader').reduce((a, n) => a + (n.count ?? 0), 0);
    expect(dropped).toBeGreaterThan(900);
    expect(lost[0]).toMatchObject({ kind: 'loss', where: 'reader', flow: slow.name });
    await fg.close();
  });

  it('drop-newest keeps the oldest records', async () => {
    const fg = new Flowgrab();
    const f = await start(fg, 'fake(feed=newest)', { bufferRecords: 3, overflow: 'drop-newest' });
    const got: number[] = [];
    f.records$.subscribe((r) => got.push(r.id as number));
    for (let i = 0; i < 10; i++) fakeFeed('newest').next(ct(i));
    await until(() => f.stats().buffer.buffered === 0, 'the buffer to drain');
    expect(got).toEqual([0, 1, 2]);
    expect(f.stats().buffer.dropped).toBe(7);
    await fg.close();
  });

  it('records before the first activate are held and delivered at activate, completion included', async () => {
    const fg = new Flowgrab();
    const f = fg.create();
    f.populate('fake(feed=early)');
    await f.instantiate();
    // A flow already active on the same feed: once it has everything, a held flow would have had it too.
    const witness = await start(fg, 'fake(feed=early) -> project(id)');
    let witnessDone = false;
    witness.records$.subscribe({ complete: () => (witnessDone = true) });
    const got: number[] = [];
    let completed = false;
    f.records$.subscribe({ next: (r) => got.push(r.id as number), complete: () => (completed = true) });
    fakeFeed('early').next(ct(1));
    fakeFeed('early').next(ct(2));
    fakeFeed('early').complete(); // a dump or a replay that ended before activate
    await until(() => witnessDone, 'the active flow to complete');
    expect(got).toEqual([]); // nothing delivered before activate
    expect(completed).toBe(false);
    await f.activate();
    await until(() => completed, 'the held flow to complete after activate');
    expect(got).toEqual([1, 2]);
    expect(completed).toBe(true);
    expect(f.stats().missed).toBe(0);
    await fg.close();
  });

  it('a paused flow keeps its allocation and counts what it misses', async () => {
    const fg = new Flowgrab();
    const f = await start(fg, 'fake(feed=pause)');
    const got: number[] = [];
    f.records$.subscribe((r) => got.push(r.id as number));
    fakeFeed('pause').next(ct(1));
    await f.pause();
    fakeFeed('pause').next(ct(2));
    fakeFeed('pause').next(ct(3));
    await f.activate();
    fakeFeed('pause').next(ct(4));
    await until(() => got.includes(4), 'the record sent after activate');
    expect(got).toEqual([1, 4]);
    expect(f.stats().missed).toBe(2);
    await fg.close();
  });

  it('instantiate reports every issue at once and leaves the flow populated', async () => {
    const fg = new Flowgrab();
    const f = fg.create();
    f.populate('fake(feed=x) -> match(orig.nope == 1) -> sample(rate=3) -> frobnicate()');
    const err = await f.instantiate().catch((e) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).issues.map((i) => i.code)).toEqual(['unknown_field', 'bad_parameter', 'unknown_node']);
    expect((err as GraphError).issues[0].path).toEqual(['root', 'steps', 1]);
    expect(f.state).toBe('populated');
    const g = fg.create();
    g.populate('match(proto == tcp)');
    expect(await g.instantiate().catch((e) => (e as GraphError).issues[0].message)).toMatch(
      /has no input: a graph starts with a source/,
    );
    await fg.close();
  });

  it('runs the authorization hook on the whole graph, and close() during instantiate releases everything', async () => {
    let release: (() => void) | undefined;
    const fg = new Flowgrab({
      authorize: async (g) => {
        await new Promise<void>((r) => (release = r));
        return JSON.stringify(g).includes('"anonymize"')
          ? []
          : [{ code: 'needs_anonymize', path: ['root'], message: 'anonymize is required' }];
      },
    });
    const denied = fg.create();
    denied.populate('fake(feed=auth) -> project(orig.src)');
    const p = denied.instantiate();
    await until(() => release !== undefined, 'the authorizer to be asked');
    release!();
    release = undefined;
    await expect(p).rejects.toMatchObject({ issues: [{ code: 'needs_anonymize' }] });
    const closing = fg.create();
    closing.populate('fake(feed=auth) -> anonymize(orig.src)');
    const q = closing.instantiate();
    await until(() => release !== undefined, 'the authorizer to be asked again');
    await closing.close();
    release!();
    await q;
    expect(closing.state).toBe('closed');
    expect(fg.stageCount).toBe(0);
    await fg.close();
  });
});
