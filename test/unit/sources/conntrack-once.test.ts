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
import { EndedIds } from '../../../src/sources/conntrack/ended.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import { conntrack } from '../../../src/sources/conntrack/source.js';
import type { SourceNotice } from '../../../src/sources/notice.js';
import { dumpReply, FakeKernel, type FakeSocket } from '../../../src/testing/fake-netlink.js';
import { waitFor } from '../../../src/testing/lab/netns.js';

const entry = (id: number): CtEntry => ({
  family: 2,
  orig: { src: '10.0.0.2', dst: `10.0.1.${id}`, protonum: 17, sport: 40000 + id, dport: 53 },
  reply: { src: `10.0.1.${id}`, dst: '10.0.0.2', protonum: 17, sport: 53, dport: 40000 + id },
  status: 0x8,
  id,
  countersOrig: { packets: BigInt(id), bytes: BigInt(id * 100) },
  countersReply: { packets: 0n, bytes: 0n },
});

const event = (kind: 'new' | 'destroy', id: number): Buffer => {
  const m = encodeCtMessage(kind, entry(id));
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
  const answer = (i: number, table: number[]) => {
    const { req, sock } = dumps[i];
    sock.deliver(
      dumpReply(
        req,
        0x100,
        table.map((id) => encodeCtMessage('dump', entry(id)).payload),
      ),
      0,
    );
  };
  return { k, dumps, answer };
}

const key = (r: ConntrackRecord) => `${r.type}:${r.id}${r.resync ? ':resync' : ''}`;

describe('conntrack feed: every event at most once', () => {
  it('after two overruns in quick succession and kernel redeliveries, no (id, type) is emitted twice', async () => {
    const { k, dumps, answer } = slowKernel();
    const recs: ConntrackRecord[] = [];
    const notices: SourceNotice[] = [];
    const sub = conntrack({
      events: ['new', 'destroy'],
      lossCheckMs: 10,
      transport: k.transport,
      notices: { next: (n) => notices.push(n) },
    }).subscribe((r) => recs.push(r));
    const events = k.openSockets[0];
    for (const id of [1, 2, 3, 4]) k.multicast(NEW, event('new', id));
    await waitFor(() => recs.length === 4, { timeoutMs: 2_000, what: 'four NEW events' });

    // Overrun 1: entries 2 and 3 end; the kernel drops 2's DESTROY.
    events.dropCount = 2;
    await waitFor(() => dumps.length === 1, { timeoutMs: 2_000, what: 'the first resync dump' });
    k.multicast(DESTROY, event('destroy', 3)); // arrives during the dump: held
    // Overrun 2, while the first resync still waits for its dump.
    events.dropCount = 5;
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
    sub.unsubscribe();

    expect(recs.map(key)).toEqual([
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
    const sub = conntrack({ events: ['new', 'destroy'], transport: k.transport }).subscribe((r) => recs.push(key(r)));
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

  it('EndedIds forgets the oldest id past its bound', () => {
    const e = new EndedIds(3);
    for (const id of [1, 2, 3, 4]) e.add(id);
    expect([e.has(1), e.has(2), e.has(4), e.size]).toEqual([false, true, true, 3]);
    e.revive(2);
    expect(e.has(2)).toBe(false);
  });
});
