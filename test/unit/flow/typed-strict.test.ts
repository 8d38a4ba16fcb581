/**
 * Types that say no where the runtime would: read-only lists in records, durations and summed fields the
 * builder would only refuse at instantiate(), one error class for every graph refusal, and the types a user
 * meets exported. Checked by tsc (`@ts-expect-error` fails the build when the line compiles); vitest runs the
 * run-time halves.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { graph } from '../../../src/filters/builder.js';
import { GraphError, type GraphIssue, type GraphIssueCode } from '../../../src/filters/errors.js';
import { GraphLimitError } from '../../../src/filters/limits.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import type { NfqueueSource } from '../../../src/index.js';
import type { NeighRecord } from '../../../src/sources/arp/record.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import type { nfqueue } from '../../../src/sources/nfqueue/source.js';

describe('strict types', () => {
  it("records' lists are read-only, as they are frozen at run time", () => {
    const status = ['ASSURED'] as ConntrackRecord['status'];
    // @ts-expect-error: a shared, frozen list
    status.push?.('X');
    expectTypeOf<ConntrackRecord['status']>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<NeighRecord['state']>().toMatchTypeOf<readonly string[]>();
  });

  it('the builder refuses at compile time a duration the runtime refuses, and sums only numbers', () => {
    const ct = graph.source<'conntrack', ConntrackRecord>('conntrack');
    ct.count({ every: '10s' });
    ct.count({ every: 500 });
    // @ts-expect-error: not a duration the graph language reads
    ct.count({ every: '1e3s' });
    // @ts-expect-error: a duration needs its unit, or is a number
    ct.count({ every: '10' });
    ct.sum({ field: 'orig.bytes', every: '1m' });
    // @ts-expect-error: an address is no number
    ct.sum({ field: 'orig.src', every: '1m' });
    ct.top({ by: 'orig.src', every: '1m', field: 'orig.packets' });
    // @ts-expect-error: a protocol name is no number
    ct.top({ by: 'orig.src', every: '1m', field: 'proto' });
  });

  it("a built-in source's parameters are typed by its schema", () => {
    graph.source('conntrack', { events: ['new'], poll: '10s', netns: 'x' });
    // @ts-expect-error: a misspelt key, which instantiate() would refuse
    graph.source('conntrack', { evnts: ['new'] });
    // @ts-expect-error: not an event
    graph.source('conntrack', { events: ['opened'] });
    graph.source('dns', { hooks: ['input', 'output'], group: 53 });
    graph.source('nfqueue', { queue: 3, verdict: 'accept' });
    // @ts-expect-error: a verdict a graph may not give every packet
    graph.source('nfqueue', { queue: 3, verdict: 'repeat' });
    graph.source('arp', { dump: true, all: true });
    // Other sources (registered ones, replay, nats) take any node parameters.
    graph.source('fake', { feed: 'x', anything: [1, 'two'] });
  });

  it('graph text over its limit is a GraphError too, naming the limit', async () => {
    const fg = new Flowgrab();
    const f = fg.create().populate(`fake(feed=x) ${' '.repeat(70_000)}`);
    const err = await f.instantiate().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GraphError);
    expect(err).toBeInstanceOf(GraphLimitError);
    expect((err as GraphLimitError).limit).toBe('textLength');
    expect((err as GraphError).issues[0].code).toBe('graph_limit');
    await fg.close();
  });

  it('issue codes are named, and nfqueue() returns a type that can be named', () => {
    const code: GraphIssueCode = 'bad_parameter';
    const custom: GraphIssue = { code: 'my_authorizer_says_no', path: [], message: 'no' };
    expect([code, custom.code]).toEqual(['bad_parameter', 'my_authorizer_says_no']);
    expectTypeOf<ReturnType<typeof nfqueue>>().toEqualTypeOf<NfqueueSource>();
  });
});
