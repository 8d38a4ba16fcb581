import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import type { CtEntry } from '../../../src/netlink/conntrack/entry.js';
import { encodeCtMessage } from '../../../src/netlink/conntrack/messages.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import { ConntrackFeed, DUMP_WORKERS } from '../../../src/sources/conntrack/feed.js';
import { conntrackToJson } from '../../../src/sources/conntrack/json.js';
import { ConntrackJsonWriter } from '../../../src/sources/conntrack/json-writer.js';
import { parseConntrackOptions } from '../../../src/sources/conntrack/options.js';
import { plainConntrackConfig } from '../../../src/sources/conntrack/plain-config.js';
import { conntrack, conntrackFeedRefs } from '../../../src/sources/conntrack/source.js';
import { conntrackDumpPayloads } from '../../../src/sources/conntrack/stream.js';
import type { SourceNotice } from '../../../src/sources/notice.js';
import { dumpReply, FakeKernel, type FakeSocket } from '../../../src/testing/fake-netlink.js';
import { briefCt, collect } from '../../helpers/collect.js';

const entry = (id: number, packets = 1, dport = 80): CtEntry => ({
  family: 2,
  orig: { src: '10.0.0.2', dst: '10.0.0.9', protonum: 6, sport: 40000 + id, dport },
  reply: { src: '10.0.0.9', dst: '10.0.0.2', protonum: 6, sport: dport, dport: 40000 + id },
  status: 0xe,
  id,
  countersOrig: { packets: BigInt(packets), bytes: BigInt(packets * 100) },
  countersReply: { packets: BigInt(packets), bytes: BigInt(packets * 50) },
  tcp: { state: 3 },
});

function event(kind: 'new' | 'update' | 'destroy', e: CtEntry): Buffer {
  const m = encodeCtMessage(kind, e);
  return encodeMessage({ type: m.type, flags: m.flags, seq: 0, pid: 0 }, m.payload);
}

/** A fake kernel whose conntrack table is `table`: dumps answer with it. */
function kernelWith(table: CtEntry[]): FakeKernel {
  const k = new FakeKernel();
  k.handler = (req: NetlinkMessage) => [
    dumpReply(
      req,
      0x100,
      table.map((e) => encodeCtMessage('dump', e).payload),
    ),
  ];
  return k;
}

describe('conntrack source (fake kernel)', () => {
  it('dumps the table and completes when no events are asked for', async () => {
    const k = kernelWith([entry(1), entry(2)]);
    const recs = await lastValueFrom(conntrack({ dump: true, transport: k.transport }).pipe(toArray()));
    expect(recs.map((r) => [r.type, r.id, r.orig.dport, r.state])).toEqual([
      ['dump', 1, 80, 'ESTABLISHED'],
      ['dump', 2, 80, 'ESTABLISHED'],
    ]);
    expect(k.openSockets).toHaveLength(0);
  });

  it('reads at most DUMP_WORKERS dumps on a worker at once (more on the pool), and closes a worker’s socket after its dump', async () => {
    // Dump requests wait here until the test answers them.
    const held: { req: NetlinkMessage; sock: FakeSocket }[] = [];
    const k = new FakeKernel();
    k.handler = (req, sock) => {
      held.push({ req, sock });
      return [];
    };
    const answer = () => {
      for (const { req, sock } of held.splice(0))
        sock.deliver(dumpReply(req, 0x100, [encodeCtMessage('dump', entry(1)).payload]), 0);
    };
    const n = DUMP_WORKERS + 2;
    // Different marks (the kernel filters: the fake does not): a feed each, all dumping at once.
    const dumps = Array.from({ length: n }, (_, mark) =>
      lastValueFrom(conntrack({ dump: true, mark, transport: k.transport }).pipe(toArray())),
    );
    await k.until(() => held.length === n, { what: `${n} dump requests` });
    const kinds = held.map(({ sock }) => (sock.options.batched ? 'worker' : sock.options.pulled ? 'pool' : '?'));
    expect(kinds).toEqual([...Array(DUMP_WORKERS).fill('worker'), 'pool', 'pool']);
    expect(held.every(({ sock }) => !sock.options.batched || sock.options.fullDatagrams)).toBe(true);
    answer();
    for (const recs of await Promise.all(dumps)) expect(recs.map((r) => r.id)).toEqual([1]);
    expect(k.openSockets).toHaveLength(0);
    // The places were given back: a live feed's dumps read on a worker again, each on a socket closed after it.
    const sub = conntrack({ dump: true, pollIntervalMs: 50, mark: 9, transport: k.transport }).subscribe();
    try {
      for (let i = 0; i < 3; i++) {
        await k.until(() => held.length === 1, { what: `dump ${i + 1} of the polling feed` });
        const { sock } = held[0];
        expect(sock.options.batched).toBe(true);
        answer();
        await k.until(() => sock.closed, { what: 'its socket closed after the dump' });
      }
    } finally {
      sub.unsubscribe();
    }
    expect(k.openSockets).toHaveLength(0);
    // A feed closed meanwhile opens no socket for a dump asked of it afterwards.
    const feed = new ConntrackFeed(parseConntrackOptions({ dump: true }), k.transport);
    feed.close();
    const before = k.sockets.length;
    await expect(feed.dump(() => {})).rejects.toMatchObject({ code: 'FG_ERR_CLOSED' });
    expect(k.sockets.length).toBe(before);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => conntrack({ events: ['nope' as 'new'] })).toThrow(/conntrack options: events\.0/);
    expect(() => conntrack({ lossCheckMs: 1 })).toThrow(/lossCheckMs: expected an integer from 10/);
    // Every issue at once, unknown keys included.
    const err = (() => {
      try {
        conntrack({ family: 'ipx' as 'ipv4', netns: '../etc', bogus: 1 } as never);
      } catch (e) {
        return e as Error & { code: string };
      }
    })();
    expect(err?.code).toBe('FG_ERR_INVALID_ARGUMENT');
    expect(err?.message).toMatch(/family: expected one of ipv4, ipv6, all, got "ipx"/);
    expect(err?.message).toMatch(/netns: expected a network namespace name/);
    expect(err?.message).toMatch(/bogus: unknown option/);
  });

  it('holds events that arrive during the dump until it ends', async () => {
    const k = kernelWith([entry(1)]);
    const seen: string[] = [];
    const sub = conntrack({ dump: true, events: ['new', 'destroy'], transport: k.transport }).subscribe((r) =>
      seen.push(`${r.type}:${r.id}`),
    );
    k.multicast(3, event('destroy', entry(1, 5))); // races the dump reply
    await k.until(() => seen.length >= 2, { what: 'the dump and the held event' });
    await k.settle();
    expect(seen).toEqual(['dump:1', 'destroy:1']);
    sub.unsubscribe();
  });

  it('shares one event socket between subscribers with the same config, and closes it after the last', async () => {
    const k = kernelWith([]);
    const opts = { events: ['new' as const], transport: k.transport };
    const a: number[] = [];
    const b: number[] = [];
    const s1 = conntrack(opts).subscribe((r) => a.push(r.id));
    const s2 = conntrack(opts).subscribe((r) => b.push(r.id));
    expect(conntrackFeedRefs(opts)).toBe(2);
    expect(k.openSockets).toHaveLength(1);
    expect(k.openSockets[0].groups).toEqual(new Set([1]));
    k.multicast(1, event('new', entry(7)));
    await k.settle();
    expect(a).toEqual([7]);
    expect(b).toEqual([7]);
    s1.unsubscribe();
    expect(k.openSockets).toHaveLength(1);
    s2.unsubscribe();
    expect(k.openSockets).toHaveLength(0);
    expect(conntrackFeedRefs(opts)).toBe(0);
  });

  it('filters events by family, zone and mark', async () => {
    const k = kernelWith([]);
    const got = firstValueFrom(conntrack({ events: ['new'], family: 'ipv4', mark: 0x10, transport: k.transport }));
    k.multicast(1, event('new', { ...entry(1), mark: 0x20 }));
    k.multicast(
      1,
      event('new', { ...entry(2), family: 10, orig: { ...entry(2).orig!, src: '::1', dst: '::2' }, mark: 0x10 }),
    );
    k.multicast(1, event('new', { ...entry(3), mark: 0x10 }));
    expect((await got).id).toBe(3);
  });

  it('reports kernel loss with its count and resyncs: re-dumps and infers the destroys it missed', async () => {
    const table = [entry(1), entry(2)];
    const k = kernelWith(table);
    const { recs, notices, unsubscribe } = collect(
      (hooks) => conntrack({ events: ['new', 'destroy'], lossCheckMs: 10, transport: k.transport, ...hooks }),
      briefCt,
    );
    k.multicast(1, event('new', entry(1)));
    k.multicast(1, event('new', entry(2)));
    await k.settle();
    // Entry 2 dies and 3 is born while the socket overflows: the kernel drops 2 messages.
    table.splice(1, 1, entry(3));
    k.openSockets[0].overflow(2);
    await k.until(() => recs.length >= 5 && notices.some((n) => n.kind === 'resync'), { what: 'the resync' });
    await k.settle();
    expect(notices.filter((n) => n.kind === 'loss')).toEqual([
      expect.objectContaining({ count: 2, where: 'kernel', source: 'conntrack' }),
    ]);
    expect(notices.some((n) => n.kind === 'resync' && n.count === 2)).toBe(true);
    expect(recs).toEqual(['new:1', 'new:2', 'dump:1:resync', 'dump:3:resync', 'destroy:2:resync']);
    unsubscribe();
  });

  it('reads the drop counter only while datagrams arrive: a quiet socket wakes no timer until its next datagram', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const k = kernelWith([]);
      const { recs, notices, unsubscribe } = collect(
        (hooks) => conntrack({ events: ['new'], lossCheckMs: 10, transport: k.transport, ...hooks }),
        briefCt,
      );
      // Turns of the event loop (the fake kernel delivers on setImmediate, which stays real), bounded.
      const turns = async (fact: () => boolean, what: string) => {
        for (let i = 0; !fact(); i++) {
          if (i > 10_000) throw new Error(`not seen: ${what}`);
          await new Promise<void>((r) => setImmediate(r));
        }
      };
      await turns(() => k.openSockets.some((s) => s.groups.size > 0), 'the event socket listening');
      const sock = k.openSockets.find((s) => s.groups.size > 0)!;
      await vi.advanceTimersByTimeAsync(10);
      expect(sock.dropReads).toBe(1);
      // Nothing arrived: no further reads, however long the socket stays quiet.
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sock.dropReads).toBe(1);
      // A datagram wakes the check: it reads while datagrams came since its last look, then sleeps again.
      k.multicast(1, event('new', entry(1)));
      await turns(() => recs.length === 1, 'the NEW event');
      await vi.advanceTimersByTimeAsync(10);
      expect(sock.dropReads).toBe(2);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sock.dropReads).toBe(3);
      // An overflow of a quiet socket: what its queue held arrives, and the loss is read and said.
      sock.overflow(4);
      await turns(() => k.pending === 0, 'the overflow delivered');
      await vi.advanceTimersByTimeAsync(10);
      expect(sock.dropReads).toBe(4);
      expect(notices.filter((n) => n.kind === 'loss')).toEqual([
        expect.objectContaining({ count: 4, where: 'kernel' }),
      ]);
      unsubscribe();
    } finally {
      vi.useRealTimers();
    }
  });

  it('emits counter deltas from periodic dumps without zeroing anything', async () => {
    const table = [entry(1, 10)];
    const k = kernelWith(table);
    const recs = conntrack({ pollIntervalMs: 15, transport: k.transport }).pipe(take(2), toArray());
    const p = lastValueFrom(recs);
    await k.requests(1); // the first poll's dump is answered from the table as it was
    table[0] = entry(1, 25);
    const [first, second] = await p;
    expect(first.delta).toEqual({ orig: { packets: 10, bytes: 1000 }, reply: { packets: 10, bytes: 500 } });
    expect(second).toMatchObject({ type: 'update', id: 1, delta: { orig: { packets: 15, bytes: 1500 } } });
    // Only GET dumps went to the kernel: never GET_CTRZERO (type 0x103).
    expect(k.sockets.flatMap((s) => s.sent.map((m) => m.type))).not.toContain(0x103);
  });

  it('gives a DESTROY the counter growth since the previous record of that entry', async () => {
    const k = kernelWith([entry(4, 3)]);
    const recs = lastValueFrom(
      conntrack({ dump: true, events: ['destroy'], transport: k.transport }).pipe(take(2), toArray()),
    );
    await k.settle(); // the dump is out and the event socket listens
    k.multicast(3, event('destroy', entry(4, 8)));
    const [, destroy] = await recs;
    expect(destroy.delta).toEqual({ orig: { packets: 5, bytes: 500 }, reply: { packets: 5, bytes: 250 } });
  });

  it('an entry a dump gives as a DELETE has ended: its DESTROY event after it is a repeat, not passed on', async () => {
    const k = new FakeKernel();
    // Entry 1 live, entry 7 as a DELETE message (not what kernels send in a dump, but the decoder types it so).
    k.handler = (req: NetlinkMessage) => [
      Buffer.concat([
        dumpReply(req, 0x100, [encodeCtMessage('dump', entry(1)).payload]).subarray(0, -20),
        dumpReply(req, 0x102, [encodeCtMessage('destroy', entry(7)).payload]),
      ]),
    ];
    const { recs, unsubscribe } = collect(
      (hooks) => conntrack({ dump: true, events: ['destroy'], transport: k.transport, ...hooks }),
      briefCt,
    );
    await k.until(() => recs.length >= 2, { what: 'the dump' });
    await k.settle();
    k.multicast(3, event('destroy', entry(7)));
    k.multicast(3, event('destroy', entry(1)));
    await k.until(() => recs.length >= 3, { what: "entry 1's DESTROY" });
    await k.settle();
    expect(recs).toEqual(['dump:1', 'destroy:7', 'destroy:1']);
    unsubscribe();
  });

  it('counts an undecodable event as loss and keeps delivering', async () => {
    const k = kernelWith([]);
    const notices: SourceNotice[] = [];
    const got = firstValueFrom(
      conntrack({ events: ['new'], transport: k.transport, notices: { next: (n) => notices.push(n) } }),
    );
    const bad = event('new', entry(1));
    bad.writeUInt16LE(0xffff, 20); // first attribute's length now overruns the message
    k.multicast(1, bad);
    k.multicast(1, event('new', entry(2)));
    expect((await got).id).toBe(2);
    expect(notices).toEqual([expect.objectContaining({ kind: 'loss', where: 'decode', count: 1 })]);
  });

  it('dumps straight into the JSON writer (no records): every entry a line, an undecodable one a loss notice', async () => {
    const good = [entry(1), entry(2, 3, 443)];
    const bad = Buffer.from(encodeCtMessage('dump', entry(9)).payload);
    bad.writeUInt16LE(0xffff, 4); // the first attribute's length overruns the entry
    const k = new FakeKernel();
    k.handler = (req: NetlinkMessage) => [
      dumpReply(req, 0x100, [encodeCtMessage('dump', good[0]).payload, bad, encodeCtMessage('dump', good[1]).payload]),
    ];
    const parts: Buffer[] = [];
    const writer = new ConntrackJsonWriter({ write: (b: Uint8Array) => parts.push(Buffer.from(b)) });
    const notices: SourceNotice[] = [];
    const cfg = plainConntrackConfig({ dump: true, events: [] });
    if (!cfg) throw new Error('a plain config');
    const run = conntrackDumpPayloads(
      cfg,
      { transport: k.transport, notices: { next: (n) => notices.push(n) } },
      (b, start, end, type, flags) => {
        writer.message(b, start, end, type, flags, 7);
      },
    );
    await run.done;
    writer.flush();
    const lines = Buffer.concat(parts).toString('utf8').trimEnd().split('\n');
    // The same lines the record path prints for the good entries.
    const want = await lastValueFrom(conntrack({ dump: true, transport: kernelWith(good).transport }).pipe(toArray()));
    expect(lines).toEqual(want.map((r) => conntrackToJson({ ...r, ts: 7 })));
    // (A warning about this machine's nf_conntrack_acct may come too.)
    expect(notices.filter((n) => n.kind !== 'warning')).toEqual([
      expect.objectContaining({ kind: 'loss', where: 'decode', count: 1 }),
    ]);
    expect(k.openSockets).toHaveLength(0);
  });
});
