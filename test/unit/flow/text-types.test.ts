/**
 * Record types of text graphs: a literal text is typed by its nodes when
 * every node keeps a known shape, and is Record<string, unknown> otherwise;
 * a stated type parameter wins, on local and remote handles alike. Checked
 * by tsc (npx tsc -p tsconfig.json); vitest runs the trivial run-time part.
 */
import type { Observable } from 'rxjs';
import { describe, expectTypeOf, it } from 'vitest';
import type { RemoteFlowgrab } from '../../../src/daemon/client.js';
import type { EnrichedNames, GraphTextRecord } from '../../../src/filters/text-type.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import type { FlowgrabLike } from '../../../src/flow/like.js';
import type { NeighRecord } from '../../../src/sources/arp/record.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import type { DnsRecord } from '../../../src/sources/dns/record.js';

type Rec = Record<string, unknown>;

describe('text graph record types', () => {
  it('a source and shape-keeping filters give the sources’ records', () => {
    expectTypeOf<GraphTextRecord<'conntrack()'>>().toEqualTypeOf<ConntrackRecord>();
    expectTypeOf<
      GraphTextRecord<'conntrack(events=[new]) -> match(proto == tcp && (orig.dport == 443 || orig.dport == 80))'>
    >().toEqualTypeOf<ConntrackRecord>();
    expectTypeOf<GraphTextRecord<'(conntrack() | dns()) -> merge()'>>().toEqualTypeOf<ConntrackRecord | DnsRecord>();
    expectTypeOf<GraphTextRecord<'(arp, dump=true) -> dedupe(by=mac, window=10s)'>>().toEqualTypeOf<NeighRecord>();
    // What is inside a node's arguments is no node: a `|` in a regex, a source's name in a string, `->` in text.
    expectTypeOf<GraphTextRecord<'dns() -> match(qname ~ /(ads|track)\\./)'>>().toEqualTypeOf<DnsRecord>();
    expectTypeOf<GraphTextRecord<'dns() -> match(qname ~ /^(www|arp)\\./)'>>().toEqualTypeOf<DnsRecord>();
    expectTypeOf<GraphTextRecord<'dns() -> match(qname == "a->b|conntrack")'>>().toEqualTypeOf<DnsRecord>();
    // A parenthesis that does not pair up inside a string or a regex: the nodes after it cannot be told
    // apart from the arguments, so the text is not guessed at.
    expectTypeOf<
      GraphTextRecord<'dns() -> match(qname ~ /\\(/) -> count(by=client, every=10s)'>
    >().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'conntrack() -> match(proto != "(") -> count(every=1s)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<"dns() -> match(qname == ')') -> merge()">>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'dns() -> match(qname == "(x)")'>>().toEqualTypeOf<DnsRecord>();
    expectTypeOf<
      GraphTextRecord<'# all new TCP flows (any port)\nconntrack(events=[new]) -> match(proto == tcp)'>
    >().toEqualTypeOf<ConntrackRecord>();
    expectTypeOf<
      GraphTextRecord<'(conntrack(events=[new]) | dns(group=53)) -> merge() -> match((proto == tcp) || (kind == query))'>
    >().toEqualTypeOf<ConntrackRecord | DnsRecord>();
    // A long text (150 filters, 300 parentheses) stays within the checker's limits.
    expectTypeOf<
      GraphTextRecord<'conntrack() -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp) -> match(proto == tcp)'>
    >().toEqualTypeOf<ConntrackRecord>();
    // enrich adds the names it found (optional: records of a branch without it have none).
    expectTypeOf<GraphTextRecord<'\n  dns()\n  -> sample(rate=0.5) -> enrich(fields=[client])'>>().toEqualTypeOf<
      DnsRecord & EnrichedNames
    >();
    expectTypeOf<GraphTextRecord<'conntrack() -> enrich()'>['names']>().toEqualTypeOf<
      Record<string, string[]> | undefined
    >();
  });

  it('any reshaping, untyped or unknown node, or a non-literal text, gives Record<string, unknown>', () => {
    expectTypeOf<GraphTextRecord<'conntrack() -> count(by=orig.src, every=10s)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'conntrack() -> project(orig.src)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'conntrack() -> redact(fields=[mark])'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'conntrack() -> anonymize(orig.src)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'conntrack() -> myfilter'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'(conntrack, events=new) -> (window, every=1s)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'replay(file=x.ndjson) -> match(proto == tcp)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'conntrack() | nats(url="nats://h:4222")'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<'match(proto == tcp)'>>().toEqualTypeOf<Rec>();
    expectTypeOf<GraphTextRecord<string>>().toEqualTypeOf<Rec>();
  });

  it('populate() applies it, extension keeps or drops the type, and a stated type wins', () => {
    const fg = new Flowgrab();
    const ct = fg.create().populate('conntrack() -> match(proto == tcp)');
    expectTypeOf(ct.records$).toEqualTypeOf<Observable<ConntrackRecord>>();
    expectTypeOf(ct.populate('-> sample(rate=0.1)').records$).toEqualTypeOf<Observable<ConntrackRecord>>();
    expectTypeOf(ct.populate('-> count(every=10s)').records$).toEqualTypeOf<Observable<Rec>>();
    const text: string = 'conntrack()';
    expectTypeOf(fg.create().populate(text).records$).toEqualTypeOf<Observable<Rec>>();
    expectTypeOf(fg.create().populate<ConntrackRecord>(text).records$).toEqualTypeOf<Observable<ConntrackRecord>>();
    // Text the checker cannot see may be anything, on a stated or built type too: populate<R>(text) states it.
    expectTypeOf(fg.create<DnsRecord>().populate(text).records$).toEqualTypeOf<Observable<Rec>>();
    expectTypeOf(fg.create<DnsRecord>().populate('dns() -> match(kind == query)').records$).toEqualTypeOf<
      Observable<DnsRecord>
    >();
    const step: string = '-> count(by=orig.src, every=10s)';
    expectTypeOf(ct.populate(step).records$).toEqualTypeOf<Observable<Rec>>();
    // A comment before the step is no whole graph; a new branch (`| …`) adds records of its own.
    expectTypeOf(ct.populate('# per source\n-> count(by=orig.src, every=1s)').records$).toEqualTypeOf<
      Observable<Rec>
    >();
    expectTypeOf(ct.populate('# tcp only\n-> match(proto == tcp)').records$).toEqualTypeOf<
      Observable<ConntrackRecord>
    >();
    expectTypeOf(ct.populate('| dns() -> count(every=1s)').records$).toEqualTypeOf<Observable<Rec>>();
    type Counted = { type: 'count'; count: number; start: number; end: number; ts: number };
    expectTypeOf(fg.create().populate<Counted>('dns() -> count(every=1s)').records$).toEqualTypeOf<
      Observable<Counted>
    >();
  });

  it('remote handles and FlowgrabLike type text the same way', () => {
    // Type-level only: no daemon here.
    const remoteTypes = (remote: RemoteFlowgrab) => {
      expectTypeOf(remote.create().populate('dns()').records$).toEqualTypeOf<Observable<DnsRecord>>();
      expectTypeOf(remote.create().populate<NeighRecord>('arp() -> project(mac)').records$).toEqualTypeOf<
        Observable<NeighRecord>
      >();
    };
    expectTypeOf(remoteTypes).toBeFunction();
    const like: FlowgrabLike = new Flowgrab();
    expectTypeOf(like.create().populate('arp()').records$).toEqualTypeOf<Observable<NeighRecord>>();
  });
});
