/**
 * "Each event at most once" for the conntrack feed, against the fake kernel:
 * two overruns in quick succession (the second during the first resync's
 * dump) while the kernel also redelivers events, as ctnetlink does when any
 * listener set NETLINK_BROADCAST_SEND_ERROR (reliable mode, ours or not).
 */
import { describe, expect, it } from 'vitest';
import type { CtEntry } from '../../../src/netlink/conntrack/entry.js';
import { encodeCtMessage } from '../../../src/netlink/conntrack/messages.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import { EndedEntries, entryKey } from '../../../src/sources/conntrack/ended.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import { conntrack } from '../../../src/sources/conntrack/source.js';
import type { SourceNotice } from '../../../src/sources/notice.js';
import { dumpReply, FakeKernel, type FakeSocket } from '../../../src/testing/fake-netlink.js';
import { waitFor } from '../../../src/testing/lab/netns.js';
import { briefCt, collect } from '../../helpers/collect.js';

/** Entry `id`; `port` (default 40000 + id) tells apart entries that share an id. */
const entry = (id: number, port = 40000 + id): CtEntry => ({
  family: 2,
  orig: { src: '10.0.0.2', dst: `10.0.1.${id}`, protonum: 17, sport: port, dport: 53 },
  reply: { src: `10.0.1.${id}`, dst: '10.0.0.2', protonum: 17, sport: 53, dport: port },
  status: 0x8,
  id,
  countersOrig: { packets: BigInt(id), bytes: BigInt(id * 100) },
  countersReply: { packets: 0n, bytes: 0n },
});

const event = (kind: 'new' | 'destroy', id: number, port?: number): Buffer => {
  const m = encodeCtMessage(kind, entry(id, port));
  return encodeMessage({ type: m.type, flags: m.flags, seq: 0, pid: 0 }, m.payload);
};
const NEW = 1;
const DESTROY = 3;

/** A fake kernel that answers dumps only when the test says so, with the table as it is then. */
function slowKernel() {
  const k = new FakeKernel();
  const dumps: { req: NetlinkMessage; sock: FakeSocket }[] = [];
  k.handler = (req, sock) => {
    dumps.push({ req, sock });
    return [];
  };
  /** Answers dump `i` with `table`: ids, or [id, port] for entries that share an id. */
  const answer = (i: number, table: (number | [number, number])[]) => {
    const { req, sock } = dumps[i];
    sock.deliver(
      dumpReply(
        req,
        0x100,
        table.map((e) => encodeCtMessage('dump', typeof e === 'number' ? entry(e) : entry(...e)).payload),
      ),
      0,
    );
  };
  return { k, dumps, answer };
}

describe('conntrack feed: every event at most once', () => {
  it('after two overruns in quick succession and kernel redeliveries, no (id, type) is emitted twice', async () => {
    const { k, dumps, answer } = slowKernel();
    const { recs, notices, unsubscribe } = collect((hooks) =>
      conntrack({ events: ['new', 'destroy'], lossCheckMs: 10, transport: k.transport, ...hooks }),
    );
    const events = k.openSockets[0];
    for (const id of [1, 2, 3, 4]) k.multicast(NEW, event('new', id));
    await waitFor(() => recs.length === 4, { timeoutMs: 2_000, what: 'four NEW events' });

    // Overrun 1: entries 2 and 3 end; the kernel drops 2's DESTROY.
    events.overflow(2);
    await waitFor(() => dumps.length === 1, { timeoutMs: 2_000, what: 'the first resync dump' });
    k.multicast(DESTROY, event('destroy', 3)); // arrives during the dump: held
    // Overrun 2, while the first resync still waits for its dump.
    events.overflow(3);
    await waitFor(() => notices.filter((n) => n.kind === 'loss').length === 2, {
      timeoutMs: 2_000,
      what: 'the second loss',
    });
    answer(0, [1, 4]);
    await waitFor(() => dumps.length === 2, { timeoutMs: 2_000, what: 'the second resync dump' });
    // The kernel redelivers what it could not give a reliable listener: to every listener, us included.
    k.multicast(DESTROY, event('destroy', 3));
    k.multicast(DESTROY, event('destroy', 2));
    k.multicast(NEW, event('new', 1));
    await k.settle();
    answer(1, [1, 4]);
    await waitFor(() => notices.filter((n) => n.kind === 'resync').length === 2, {
      timeoutMs: 2_000,
      what: 'two resyncs',
    });
    k.multicast(DESTROY, event('destroy', 4));
    k.multicast(DESTROY, event('destroy', 4));
    k.multicast(NEW, event('new', 5));
    await waitFor(() => recs.some((r) => r.id === 5), { timeoutMs: 2_000, what: 'the last NEW' });
    unsubscribe();

    expect(recs.map(briefCt)).toEqual([
      'new:1',
      'new:2',
      'new:3',
      'new:4',
      'dump:1:resync',
      'dump:4:resync',
      'destroy:2:resync',
      'destroy:3',
      'dump:1:resync',
      'dump:4:resync',
      'destroy:4',
      'new:5',
    ]);
    const events2 = recs.filter((r) => r.type !== 'dump').map((r) => `${r.type}:${r.id}`);
    expect(new Set(events2).size).toBe(events2.length);
  });

  it('reports an entry again after its id comes back to life (the kernel reuses ids)', async () => {
    const k = new FakeKernel();
    const recs: string[] = [];
    const sub = conntrack({ events: ['new', 'destroy'], transport: k.transport }).subscribe((r) =>
      recs.push(briefCt(r)),
    );
    for (const [g, kind] of [
      [NEW, 'new'],
      [DESTROY, 'destroy'],
      [NEW, 'new'],
      [DESTROY, 'destroy'],
      [DESTROY, 'destroy'],
    ] as const)
      k.multicast(g, event(kind, 7));
    await waitFor(() => recs.length >= 4, { timeoutMs: 2_000, what: 'the events' });
    await k.settle(); // all five delivered: the fifth (a repeated destroy) is dropped, not late
    sub.unsubscribe();
    expect(recs).toEqual(['new:7', 'destroy:7', 'new:7', 'destroy:7']);
  });

  it('asks the transport for reliable delivery only when told to, and keeps such feeds apart', () => {
    const k = new FakeKernel();
    const a = conntrack({ events: ['destroy'], transport: k.transport, reliable: true }).subscribe(() => {});
    const b = conntrack({ events: ['destroy'], transport: k.transport }).subscribe(() => {});
    expect(k.openSockets.map((s) => Boolean(s.options.reliable))).toEqual([true, false]);
    a.unsubscribe();
    b.unsubscribe();
    expect(() => conntrack({ reliable: 'yes' as never })).toThrow(/reliable/);
  });

  it('entryKey: one entry keeps its key through its life; another tuple or zone under the same id gets another', () => {
    const base: ConntrackRecord = {
      type: 'new',
      id: 0xfedcba98,
      family: 'ipv4',
      proto: 'udp',
      protonum: 17,
      orig: { src: '10.0.0.2', dst: '10.0.1.9', sport: 1000, dport: 53 },
      reply: { src: '10.0.1.9', dst: '10.0.0.2', sport: 53, dport: 1000 },
      status: [],
      ts: 0,
    };
    const k = entryKey(base);
    const ended = {
      ...base,
      type: 'destroy' as const,
      orig: { ...base.orig, packets: 3, bytes: 300 },
      status: ['ASSURED'],
    };
    expect(entryKey(ended)).toBe(k);
    expect(Math.floor(k / 2 ** 20)).toBe(base.id);
    const others = [
      { ...base, orig: { ...base.orig, sport: 1001 } },
      { ...base, orig: { ...base.orig, dst: '10.0.1.19' } },
      { ...base, protonum: 6 },
      { ...base, zone: 1 },
      { ...base, orig: { src: '10.0.0.2', dst: '10.0.1.9', icmp: { type: 8, code: 0, id: 1000 } }, protonum: 1 },
    ];
    expect(new Set([k, ...others.map(entryKey)]).size).toBe(others.length + 1);
  });

  it('EndedEntries forgets the oldest entry past its bound', () => {
    const e = new EndedEntries(3);
    for (const k of [1, 2, 3, 4]) e.add(k);
    expect([e.has(1), e.has(2), e.has(4), e.size]).toEqual([false, true, true, 3]);
    e.revive(2);
    expect(e.has(2)).toBe(false);
  });

  it('two live entries sharing an id (ids are 32-bit hashes) are two entries: each NEW and DESTROY once', async () => {
    const k = new FakeKernel();
    const recs: string[] = [];
    const sub = conntrack({ events: ['new', 'destroy'], transport: k.transport }).subscribe((r) =>
      recs.push(`${briefCt(r)}:${r.orig.sport}`),
    );
    k.multicast(NEW, event('new', 9, 1000));
    k.multicast(NEW, event('new', 9, 2000)); // another entry, same id: not a repeat
    k.multicast(DESTROY, event('destroy', 9, 1000));
    k.multicast(DESTROY, event('destroy', 9, 1000)); // a redelivery: dropped
    k.multicast(NEW, event('new', 9, 2000)); // a redelivery: dropped
    k.multicast(DESTROY, event('destroy', 9, 2000)); // the other entry's end still goes out
    await waitFor(() => recs.length >= 4, { timeoutMs: 2_000, what: 'the events' });
    await k.settle();
    sub.unsubscribe();
    expect(recs).toEqual(['new:9:1000', 'new:9:2000', 'destroy:9:1000', 'destroy:9:2000']);
  });

  it('a resync infers the end of one of two entries sharing an id, and the real DESTROY after it is dropped', async () => {
    const { k, dumps, answer } = slowKernel();
    const { recs, notices, unsubscribe } = collect((hooks) =>
      conntrack({ events: ['new', 'destroy'], lossCheckMs: 10, transport: k.transport, ...hooks }),
    );
    k.multicast(NEW, event('new', 9, 1000));
    k.multicast(NEW, event('new', 9, 2000));
    await waitFor(() => recs.length === 2, { timeoutMs: 2_000, what: 'two NEW events' });
    // Overrun: entry (9, 1000) ended and its DESTROY was lost; (9, 2000) lives on.
    k.openSockets[0].overflow(1);
    await waitFor(() => dumps.length === 1, { timeoutMs: 2_000, what: 'the resync dump' });
    answer(0, [[9, 2000]]);
    await waitFor(() => notices.some((n) => n.kind === 'resync'), { timeoutMs: 2_000, what: 'the resync' });
    // The kernel redelivers the lost DESTROY (a reliable listener elsewhere), then the other entry ends.
    k.multicast(DESTROY, event('destroy', 9, 1000));
    k.multicast(DESTROY, event('destroy', 9, 2000));
    k.multicast(DESTROY, event('destroy', 9, 2000));
    await waitFor(() => recs.filter((r) => r.type === 'destroy').length >= 2, {
      timeoutMs: 2_000,
      what: 'both ends',
    });
    await k.settle();
    unsubscribe();
    expect(recs.map((r) => `${briefCt(r)}:${r.orig.sport}`)).toEqual([
      'new:9:1000',
      'new:9:2000',
      'dump:9:resync:2000',
      'destroy:9:resync:1000',
      'destroy:9:2000',
    ]);
  });
  it('a NEW-only feed keeps no table: a redelivered NEW is still dropped, and a resync re-dumps without inferring ends', async () => {
    const { k, dumps, answer } = slowKernel();
    const recs: ConntrackRecord[] = [];
    const notices: SourceNotice[] = [];
    const sub = conntrack({
      events: ['new'],
      lossCheckMs: 10,
      transport: k.transport,
      notices: { next: (n) => notices.push(n) },
    }).subscribe((r) => recs.push(r));
    const events = k.openSockets[0];
    for (const id of [1, 2, 3]) k.multicast(NEW, event('new', id));
    k.multicast(NEW, event('new', 2)); // a redelivery: dropped
    k.multicast(NEW, event('new', 2, 1234)); // another entry with the same id: passed on
    await waitFor(() => recs.length === 4, { timeoutMs: 2_000, what: 'four NEW events' });
    events.overflow(3);
    await waitFor(() => dumps.length === 1, { timeoutMs: 2_000, what: 'the resync dump' });
    answer(0, [1]); // 2 and 3 ended meanwhile: nobody asked for ends, so none is inferred
    await waitFor(() => notices.some((n) => n.kind === 'resync'), { timeoutMs: 2_000, what: 'the resync' });
    k.multicast(NEW, event('new', 4));
    await waitFor(() => recs.some((r) => r.id === 4), { timeoutMs: 2_000, what: 'the last NEW' });
    sub.unsubscribe();
    expect(recs.map((r) => `${briefCt(r)}:${r.orig.sport}`)).toEqual([
      'new:1:40001',
      'new:2:40002',
      'new:3:40003',
      'new:2:1234',
      'dump:1:resync:40001',
      'new:4:40004',
    ]);
  });
});
