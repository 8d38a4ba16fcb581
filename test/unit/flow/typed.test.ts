/**
 * Typed records end to end: a built graph's record type follows its nodes,
 * populate() takes the builder as it is (at run time too), and local and
 * remote handles fit one interface. The type assertions are checked by tsc
 * (npx tsc -p tsconfig.json); the run-time part by vitest.
 */
import { firstValueFrom, of, Subject, take, toArray } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { RemoteFlowgrab, RemoteFlowHandle } from '../../../src/daemon/client.js';
import type { CountRecord, Projected } from '../../../src/filters/builder.js';
import { graph } from '../../../src/filters/builder.js';
import { ANY_FIELDS } from '../../../src/filters/fields.js';
import { registerSource } from '../../../src/filters/registry.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import type { FlowHandle } from '../../../src/flow/handle.js';
import type { FlowgrabLike, FlowHandleLike } from '../../../src/flow/like.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import type { DnsRecord } from '../../../src/sources/dns/record.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';

describe('record types follow the graph', () => {
  it('source gives its record, match keeps it, project narrows it, count keys it', () => {
    const ct = graph.source('conntrack', { events: ['new'] });
    expectTypeOf(ct.toSpec).toBeFunction();
    const fg = new Flowgrab();
    expectTypeOf(fg.create().populate(ct).records$).toEqualTypeOf<import('rxjs').Observable<ConntrackRecord>>();
    const matched = fg.create().populate(ct.match('proto == tcp'));
    expectTypeOf(matched).toEqualTypeOf<FlowHandle<ConntrackRecord>>();
    const projected = fg.create().populate(ct.project('orig.src', 'orig.dport'));
    type P = Projected<ConntrackRecord, 'orig.src' | 'orig.dport'>;
    expectTypeOf(projected).toEqualTypeOf<FlowHandle<P>>();
    projected.records$.subscribe((r) => {
      expectTypeOf(r.orig.src).toEqualTypeOf<string>();
      expectTypeOf(r.type).toEqualTypeOf<ConntrackRecord['type']>();
      // @ts-expect-error: project dropped reply
      void r.reply;
    });
    const counted = fg.create().populate(ct.count({ by: 'orig.src', every: '10s' }));
    counted.records$.subscribe((r) => {
      expectTypeOf(r).toEqualTypeOf<CountRecord<{ orig: { src: string } }>>();
      expectTypeOf(r.count).toEqualTypeOf<number>();
    });
    // @ts-expect-error: no such path in a conntrack record
    ct.count({ by: 'orig.nope' });
    expectTypeOf(graph.source('dns').match('kind == response')).toEqualTypeOf<
      import('../../../src/filters/builder.js').GraphBuilder<DnsRecord>
    >();
  });

  it('a path whose value may be missing is optional, with every level above it (a projection leaves it out)', () => {
    const ct = graph.source('conntrack', { dump: true });
    const fg = new Flowgrab();
    // ICMP flows have no ports: project(orig.sport) gives {type, ts} for them, without `orig`.
    fg.create()
      .populate(ct.project('orig.sport'))
      .records$.subscribe((r) => {
        expectTypeOf(r.orig).toEqualTypeOf<{ sport?: number } | undefined>();
        // @ts-expect-error: orig may be missing
        void r.orig.sport;
      });
    fg.create()
      .populate(ct.project('orig.src', 'orig.sport'))
      .records$.subscribe((r) => {
        expectTypeOf(r.orig.src).toEqualTypeOf<string>(); // orig is there: src always is
        expectTypeOf(r.orig.sport).toEqualTypeOf<number | undefined>();
      });
    fg.create()
      .populate(ct.count({ by: 'orig.dport', every: '10s' }))
      .records$.subscribe((r) => expectTypeOf(r.orig).toEqualTypeOf<{ dport?: number } | undefined>());
    // A union keeps each member's part: a DNS record has no orig.
    fg.create()
      .populate(graph.union(ct, graph.source('dns')).project('orig.src'))
      .records$.subscribe((r) => {
        if ('orig' in r) expectTypeOf(r.orig.src).toEqualTypeOf<string>();
      });
  });

  it('the builder asks for what the graph needs: every window, no key that collides with the output', () => {
    const ct = graph.source('conntrack');
    // @ts-expect-error: count needs `every`
    ct.count({ by: 'orig.src' });
    // @ts-expect-error: the count record has its own type
    ct.count({ by: 'type', every: '1s' });
    // @ts-expect-error: not a duration
    ct.count({ by: 'orig.src', every: 'ten seconds' });
    // sum without a key: one group.
    expectTypeOf(ct.sum({ field: 'orig.bytes', every: '1m' })).toEqualTypeOf<
      import('../../../src/filters/builder.js').GraphBuilder<import('../../../src/filters/builder.js').SumRecord>
    >();
  });

  it('records of an interface type go in: fakeFeed and registerSource take any object type', async () => {
    interface Reading {
      type: string;
      ts: number;
      value: number;
    }
    const one: Reading = { type: 'reading', ts: 1, value: 2 };
    const readings = new Subject<Reading>();
    expectTypeOf(fakeFeed<Reading>('typed-iface').next).parameter(0).toEqualTypeOf<Reading>();
    registerSource({
      name: `readings${process.pid}`,
      description: 'a test source of an interface type',
      params: z.object({}).strict(),
      fields: ANY_FIELDS,
      create: () => readings,
    });
    const fg = new Flowgrab();
    const f = fg.create<Reading>().populate(`readings${process.pid}()`);
    await f.instantiate();
    const got = firstValueFrom(f.records$);
    await f.activate();
    readings.next(one);
    expect(await got).toEqual(one);
    // A source that emits as it is subscribed (at instantiate): held, delivered at activate.
    registerSource({
      name: `readingsNow${process.pid}`,
      description: 'a test source that emits at once',
      params: z.object({}).strict(),
      fields: ANY_FIELDS,
      create: () => of(one, { ...one, value: 3 }),
    });
    const now = fg.create<Reading>().populate(`readingsNow${process.pid}()`);
    await now.instantiate();
    const all = firstValueFrom(now.records$.pipe(toArray()));
    await now.activate();
    expect((await all).map((r) => r.value)).toEqual([2, 3]);
    await fg.close();
  });

  it('text graphs are typed by their nodes (see text-types.test.ts), or take the type the user states', () => {
    const fg = new Flowgrab();
    expectTypeOf(fg.create().populate('conntrack()').records$).toEqualTypeOf<
      import('rxjs').Observable<ConntrackRecord>
    >();
    expectTypeOf(fg.create<DnsRecord>().populate('dns()').records$).toEqualTypeOf<
      import('rxjs').Observable<DnsRecord>
    >();
  });

  it('local and remote handles implement one interface', () => {
    expectTypeOf<FlowHandle<ConntrackRecord>>().toMatchTypeOf<FlowHandleLike<ConntrackRecord>>();
    expectTypeOf<RemoteFlowHandle<ConntrackRecord>>().toMatchTypeOf<FlowHandleLike<ConntrackRecord>>();
    expectTypeOf<Flowgrab>().toMatchTypeOf<FlowgrabLike>();
    expectTypeOf<RemoteFlowgrab>().toMatchTypeOf<FlowgrabLike>();
    // The daemon's status has its shape in the types, not Record<string, unknown>.
    expectTypeOf<
      Awaited<ReturnType<RemoteFlowgrab['status']>>['clients'][number]['flows'][number]['sent']
    >().toEqualTypeOf<number>();
  });

  it('populate takes the builder at run time, without toSpec()', async () => {
    const feed = fakeFeed(`typed-${process.pid}`);
    const fg = new Flowgrab();
    // A fake source with conntrack's fields, typed as conntrack records by the caller.
    const built = graph
      .source<'fake', ConntrackRecord>('fake', { feed: `typed-${process.pid}` })
      .match('proto == tcp')
      .project('orig.src');
    const flow = fg.create().populate(built);
    expect(flow.state).toBe('populated');
    await flow.instantiate();
    const got = firstValueFrom(flow.records$.pipe(take(2), toArray()));
    await flow.activate();
    const rec = (proto: string, src: string) => ({ type: 'new', proto, orig: { src, dst: '10.0.0.9' }, ts: 1 });
    for (const r of [rec('tcp', '10.0.0.1'), rec('udp', '10.0.0.2'), rec('tcp', '10.0.0.3')]) feed.next(r);
    const out = await got;
    expect(out).toEqual([
      { type: 'new', ts: 1, orig: { src: '10.0.0.1' } },
      { type: 'new', ts: 1, orig: { src: '10.0.0.3' } },
    ]);
    expectTypeOf(out[0]!.orig.src).toEqualTypeOf<string>();
    await fg.close();
  });

  it('text extends a built graph as it extends text', async () => {
    const id = `typed-ext-${process.pid}`;
    const feed = fakeFeed(id);
    const fg = new Flowgrab();
    const built = graph.source<'fake', ConntrackRecord>('fake', { feed: id }).match('proto == tcp');
    const flow = fg.create().populate(built).populate('-> count(by=orig.src, every=1h)');
    expect(flow.graph).toBe(`${built}\n-> count(by=orig.src, every=1h)`);
    await flow.instantiate();
    const got = firstValueFrom(flow.records$.pipe(toArray()));
    await flow.activate();
    const rec = (proto: string, src: string) => ({ type: 'new', proto, orig: { src, dst: '10.0.0.9' }, ts: 1 });
    for (const r of [rec('tcp', '10.0.0.1'), rec('udp', '10.0.0.1'), rec('tcp', '10.0.0.1'), rec('tcp', '10.0.0.3')])
      feed.next(r);
    feed.complete();
    const out = await got;
    expect(out.map((r) => [(r.orig as { src: string }).src, r.count])).toEqual([
      ['10.0.0.1', 2],
      ['10.0.0.3', 1],
    ]);
    // A built graph is whole: it does not extend text, and a second one does not replace the first.
    expect(() => fg.create().populate('fake(feed="x")').populate(built)).toThrow(/fresh flow/);
    expect(() => fg.create().populate(built).populate(built)).toThrow(/fresh flow/);
    await fg.close();
  });
});
