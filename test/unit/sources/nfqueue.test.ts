import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NLM_F_ACK } from '../../../src/netlink/enums.js';
import {
  decodeNfqConfig,
  decodeNfqVerdict,
  NFQUEUE_CONFIG_TYPE,
  NFQUEUE_VERDICT_BATCH_TYPE,
  NFQUEUE_VERDICT_TYPE,
} from '../../../src/netlink/nfqueue/config.js';
import * as Q from '../../../src/netlink/nfqueue/enums.js';
import { decodeNfqPacket, encodeNfqPacket, type NfqPacket } from '../../../src/netlink/nfqueue/packet.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import { VerdictBook } from '../../../src/sources/nfqueue/book.js';
import { packetToJson } from '../../../src/sources/nfqueue/json.js';
import type { NfqueueOptionsInput } from '../../../src/sources/nfqueue/options.js';
import type { QueuedPacket } from '../../../src/sources/nfqueue/queued.js';
import { PacketRecord } from '../../../src/sources/nfqueue/record.js';
import { nfqueue, nfqueueFeedRefs } from '../../../src/sources/nfqueue/source.js';
import type { SourceNotice } from '../../../src/sources/notice.js';
import { sourcesTornDown } from '../../../src/sources/teardown.js';
import { ackReply, FakeKernel, type FakeSocket } from '../../../src/testing/fake-netlink.js';
import { fixtureMessages } from '../../helpers/fixtures.js';

const golden = fixtureMessages('nfqueue-output').filter((m) => m.type === 0x300);
const asDatagram = (m: NetlinkMessage) => encodeMessage(m, m.payload);
const base = decodeNfqPacket(golden[0].payload); // an ICMP echo request 10.233.0.2 → 10.233.0.1
/** A packet message for queue 3 with the given id (the golden ICMP packet otherwise). */
const pkt = (id: number, extra: Partial<NfqPacket> = {}) => {
  const e = encodeNfqPacket({ ...base, id, ...extra });
  return encodeMessage({ type: e.type, flags: 0, seq: 0, pid: 0 }, e.payload);
};

/** ACKs config requests (the bind refused with `bindErrno`); verdicts need no answer. */
function queueKernel(bindErrno = 0): FakeKernel {
  const k = new FakeKernel();
  k.handler = (req) => {
    if (!(req.flags & NLM_F_ACK)) return undefined;
    const bind = req.type === NFQUEUE_CONFIG_TYPE && decodeNfqConfig(req.payload).cmd?.command === Q.NFQNL_CFG_CMD_BIND;
    return [ackReply(req, bind ? bindErrno : 0)];
  };
  return k;
}

const verdicts = (s: FakeSocket) =>
  s.sent
    .filter((m) => m.type === NFQUEUE_VERDICT_TYPE || m.type === NFQUEUE_VERDICT_BATCH_TYPE)
    .map((m) => ({ batch: m.type === NFQUEUE_VERDICT_BATCH_TYPE, ...decodeNfqVerdict(m.payload) }));

const opened: { unsubscribe(): void }[] = [];
// A failed test must not leave its queue open for the next one (feeds are shared per queue).
afterEach(async () => {
  for (const s of opened.splice(0)) s.unsubscribe();
  await sourcesTornDown();
});

/** Subscribes to queue 3 on a fake kernel; `got` fills with the emitted packets. */
async function open(k: FakeKernel, opts: Partial<NfqueueOptionsInput> = {}) {
  const got: QueuedPacket[] = [];
  const notices: SourceNotice[] = [];
  const errors: Error[] = [];
  const src = nfqueue({
    queue: 3,
    interfaceNames: false,
    transport: k.transport,
    notices: { next: (n) => notices.push(n) },
    ...opts,
  });
  const sub = src.subscribe({ next: (p) => got.push(p), error: (e) => errors.push(e) });
  opened.push(sub);
  // Bound and configured (or refused): on a loaded machine a fixed few milliseconds were not always enough.
  let bound = false;
  const done = () => {
    bound = true;
  };
  src.ready().then(done, done);
  await k.until(() => bound || errors.length > 0, { what: `queue ${opts.queue ?? 3} bound or refused` });
  await k.settle();
  const sock = k.sockets.at(-1)!;
  const close = async () => {
    sub.unsubscribe();
    await sourcesTornDown();
  };
  return { src, sub, got, notices, errors, sock, close };
}

describe('nfqueue source (fake kernel)', () => {
  it('binds the queue, then sets copy mode, queue length and flags (fail-open, uid/gid)', async () => {
    const k = queueKernel();
    const q = await open(k, { maxLen: 64 });
    const cfg = q.sock.sent.filter((m) => m.type === NFQUEUE_CONFIG_TYPE).map((m) => decodeNfqConfig(m.payload));
    expect(cfg).toEqual([
      { queue: 3, cmd: { command: Q.NFQNL_CFG_CMD_BIND, pf: 0 } },
      { queue: 3, params: { copyRange: 0xffff, mode: Q.NFQNL_COPY_PACKET } },
      { queue: 3, maxLen: 64 },
      {
        queue: 3,
        flags: Q.NFQA_CFG_F_FAIL_OPEN | Q.NFQA_CFG_F_UID_GID,
        mask: Q.NFQA_CFG_F_FAIL_OPEN | Q.NFQA_CFG_F_UID_GID,
      },
    ]);
    expect(q.sock.options).toMatchObject({ protocol: 12, peek: true });
    // Room for a full queue: maxLen × (copyRange + 512 bytes of message overhead).
    expect(q.sock.options.recvBufferBytes).toBe(64 * (0xffff + 512));
    await q.close();
  });

  it('emits golden kernel packets as PacketRecords with parsed headers', async () => {
    const k = queueKernel();
    const q = await open(k);
    for (const m of golden) q.sock.deliver(asDatagram(m), 0);
    await k.settle();
    expect(q.got.map((p) => p.packetId)).toEqual(golden.map((_, i) => i + 1));
    for (const p of q.got) expect(PacketRecord.safeParse(p).success).toBe(true);
    const [ping, marked, v6] = q.got;
    expect(ping).toMatchObject({
      queue: 3,
      family: 'ipv4',
      hwProtocol: 0x0800,
      hook: 'output',
      mark: 0,
      uid: 0,
      gid: 0,
      length: 84,
      ip: { src: '10.233.0.2', dst: '10.233.0.1', proto: 1, ttl: 64 },
      icmp: { type: 8, code: 0 },
    });
    expect(ping.payload).toHaveLength(84);
    expect(ping.outdev).toBeGreaterThan(0);
    expect(marked.mark).toBe(0x10);
    expect(v6).toMatchObject({ family: 'ipv6', ip: { proto: 58, hopLimit: 64 }, icmp: { type: 128, code: 0 } });
    expect(v6.ip?.ttl).toBeUndefined();
    const syn = q.got.find((p) => p.tcp?.flags === 0x02)!;
    expect(syn.tcp).toMatchObject({ dport: 7000 });
    expect(syn.udp).toBeUndefined();
    // JSON carries the data (payload as hex), not the verdict method.
    const json = JSON.parse(packetToJson(ping));
    expect(json.payload).toBe(ping.payload.toString('hex'));
    expect(Object.keys(json)).not.toContain('verdict');
    for (const p of q.got) p.verdict('accept');
    await q.close();
  });

  it('sends a verdict per packet, with a new mark when asked, and by id through the source', async () => {
    const k = queueKernel();
    const q = await open(k);
    for (const id of [1, 2, 3]) q.sock.deliver(pkt(id), 0);
    await k.settle();
    const datagrams: Buffer[] = [];
    const send = q.sock.send.bind(q.sock);
    q.sock.send = (b: Buffer) => {
      datagrams.push(b);
      send(b);
    };
    q.got[0].verdict('drop');
    q.got[1].verdict('accept', { mark: 0x20 });
    q.src.verdict(3, 'repeat');
    expect(datagrams).toHaveLength(0); // sent at the end of this turn of the event loop…
    await k.settle();
    expect(datagrams).toHaveLength(1); // …all three in one datagram
    expect(verdicts(q.sock)).toEqual([
      { batch: false, queue: 3, verdict: Q.NF_DROP, id: 1 },
      { batch: false, queue: 3, verdict: Q.NF_ACCEPT, id: 2, mark: 0x20 },
      { batch: false, queue: 3, verdict: Q.NF_REPEAT, id: 3 },
    ]);
    expect(q.src.pending).toBe(0);
    await q.close();
  });

  it('refuses a second verdict for a packet and a verdict for a packet never delivered, sending nothing', async () => {
    const k = queueKernel();
    const q = await open(k);
    q.sock.deliver(pkt(1), 0);
    await k.settle();
    q.got[0].verdict('drop');
    expect(() => q.got[0].verdict('accept')).toThrow(
      expect.objectContaining({
        code: 'FG_ERR_INVALID_STATE',
        message: expect.stringMatching(/packet 1 on queue 3 refused: it already had a verdict \(drop\)/),
      }),
    );
    expect(() => q.src.verdict(7, 'accept')).toThrow(
      expect.objectContaining({
        code: 'FG_ERR_INVALID_ARGUMENT',
        message: expect.stringMatching(/packet 7 .* no such packet was delivered/),
      }),
    );
    expect(() => q.src.verdict(1, 'maybe' as 'accept')).toThrow(/verdict must be accept, drop or repeat/);
    expect(() => q.src.verdict(1, 'accept', { mark: -1 })).toThrow(/mark must be an integer/);
    await k.settle();
    expect(verdicts(q.sock)).toHaveLength(1);
    await q.close();
    expect(() => q.src.verdict(1, 'accept')).toThrow(
      expect.objectContaining({ code: 'FG_ERR_INVALID_STATE', message: expect.stringMatching(/not subscribed/) }),
    );
  });

  it('batch verdicts decide every pending packet up to an id, skipping decided ones', async () => {
    const k = queueKernel();
    const q = await open(k);
    for (const id of [1, 2, 3, 4, 5]) q.sock.deliver(pkt(id), 0);
    await k.settle();
    q.got[2].verdict('drop');
    expect(q.src.verdictBatch(4, 'accept', { mark: 7 })).toBe(3); // 1, 2, 4
    expect(q.src.verdictBatch(4, 'accept')).toBe(0); // nothing left ≤ 4: no message
    expect(() => q.src.verdictBatch(9, 'accept')).toThrow(/packet 9 .* no such packet was delivered/);
    expect(() => q.got[1].verdict('drop')).toThrow(/already had a verdict \(accept \(batch\)\)/);
    expect(q.src.pending).toBe(1);
    await k.settle();
    expect(verdicts(q.sock)).toEqual([
      { batch: false, queue: 3, verdict: Q.NF_DROP, id: 3 },
      { batch: true, queue: 3, verdict: Q.NF_ACCEPT, id: 4, mark: 7 },
    ]);
    await q.close();
  });

  it('on unsubscribe gives every pending packet the default verdict, then unbinds and closes', async () => {
    const k = queueKernel();
    const q = await open(k, { defaultVerdict: 'drop' });
    for (const id of [1, 2, 3]) q.sock.deliver(pkt(id), 0);
    await k.settle();
    q.got[1].verdict('accept');
    await q.close();
    const tail = q.sock.sent.slice(-2);
    expect(decodeNfqVerdict(tail[0].payload)).toEqual({ queue: 3, verdict: Q.NF_DROP, id: 3 });
    expect(tail[0].type).toBe(NFQUEUE_VERDICT_BATCH_TYPE);
    expect(tail[1].type).toBe(NFQUEUE_CONFIG_TYPE);
    expect(decodeNfqConfig(tail[1].payload).cmd?.command).toBe(Q.NFQNL_CFG_CMD_UNBIND);
    expect(q.sock.closed).toBe(true);
    expect(nfqueueFeedRefs({ queue: 3 })).toBe(0);
  });

  it('gives a packet arriving while the queue closes the default verdict at once', async () => {
    const k = queueKernel();
    const q = await open(k);
    q.sub.unsubscribe();
    q.sock.deliver(pkt(1), 0); // lands before the unbind's ACK
    await sourcesTornDown();
    expect(q.got).toEqual([]);
    expect(verdicts(q.sock)).toEqual([{ batch: false, queue: 3, verdict: Q.NF_ACCEPT, id: 1 }]);
  });

  it('gives packets without a verdict in time the default verdict, with a notice, and refuses late verdicts', async () => {
    const k = queueKernel();
    const q = await open(k, { verdictTimeoutMs: 40, defaultVerdict: 'drop' });
    const defaults = () => verdicts(q.sock).filter((v) => v.batch);
    const upTo = (id: number) => defaults().some((v) => v.id >= id);
    for (const id of [1, 2]) q.sock.deliver(pkt(id), 0);
    // Packet 3 comes after 1 and 2 timed out, so it times out on its own. (1 and 2 usually time out together;
    // on a busy machine they may come a tick apart and time out one by one.)
    await k.until(() => upTo(2), { what: 'the default verdict for packets 1 and 2' });
    q.sock.deliver(pkt(3), 0);
    await k.until(() => upTo(3), { what: 'the default verdict for packet 3' });
    await k.settle();
    const ids = defaults().map((v) => v.id);
    expect(ids.slice(-2)).toEqual([2, 3]);
    expect([
      [1, 2, 3],
      [2, 3],
    ]).toContainEqual(ids);
    expect(defaults().every((v) => v.queue === 3 && v.verdict === Q.NF_DROP)).toBe(true);
    const timeouts = q.notices.filter((n) => /no verdict within 40 ms/.test(n.message));
    expect(timeouts.map((n) => n.count)).toEqual(ids.length === 2 ? [2, 1] : [1, 1, 1]);
    expect(() => q.got[0].verdict('accept')).toThrow(/already had a verdict \(default drop after 40 ms\)/);
    await q.close();
  });

  it('times verdicts out on the monotonic clock: a wall clock stepped back an hour does not hold packets', async () => {
    const k = queueKernel();
    const q = await open(k, { verdictTimeoutMs: 40, defaultVerdict: 'drop' });
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true }); // timers stay real; the wall clock is set
    try {
      q.sock.deliver(pkt(1), 0);
      await k.until(() => q.got.length === 1, { what: 'packet 1' });
      vi.setSystemTime(Date.now() - 3_600_000); // NTP steps the clock back
      q.sock.deliver(pkt(2), 0);
      await k.until(() => verdicts(q.sock).some((v) => v.batch && v.id >= 2), {
        timeoutMs: 15_000,
        what: 'the default verdict for packets 1 and 2 after the clock stepped back',
      });
    } finally {
      vi.useRealTimers();
    }
    await q.close();
  });

  it('reports a queue bound by another reader (EPERM) as FG_ERR_BUSY naming the queue', async () => {
    const k = queueKernel(1);
    const q = await open(k, { queue: 9 });
    await k.until(() => q.errors.length > 0, { what: 'the EPERM refusal' });
    expect(q.errors).toHaveLength(1);
    expect(q.errors[0]).toMatchObject({
      code: 'FG_ERR_BUSY',
      message: expect.stringMatching(/NFQUEUE queue 9 is already bound by another reader in this network namespace/),
    });
    await q.close();
  });

  it('ticks while packets wait for verdicts or datagrams arrive; a quiet queue with none waiting wakes no timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      // Event-loop turns (the fake kernel delivers on setImmediate, which stays real) with fake time moving on.
      const turns = async (fact: () => boolean, what: string) => {
        for (let i = 0; !fact(); i++) {
          if (i > 10_000) throw new Error(`not seen: ${what}`);
          await new Promise<void>((r) => setImmediate(r));
          await vi.advanceTimersByTimeAsync(1);
        }
      };
      const k = queueKernel();
      let q: Awaited<ReturnType<typeof open>> | undefined;
      void open(k, { failOpen: true }).then((x) => {
        q = x;
      });
      await turns(() => q !== undefined, 'the queue bound');
      const { sock, got, errors } = q!;
      // Ticks every 250 ms: the first sees the binding's replies, the second nothing new, and it sleeps.
      await vi.advanceTimersByTimeAsync(500);
      expect(sock.dropReads).toBe(2);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sock.dropReads).toBe(2);
      // A packet wakes it; it ticks while the packet waits for its verdict …
      sock.deliver(pkt(1), 0);
      await turns(() => got.length === 1, 'packet 1');
      await vi.advanceTimersByTimeAsync(500);
      expect(sock.dropReads).toBe(4);
      // … and once the packet has one and nothing else came, sleeps again.
      got[0].verdict('accept');
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sock.dropReads).toBe(5);
      expect(errors).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts id gaps and socket drops as loss once, never failing the stream', async () => {
    const k = queueKernel();
    const q = await open(k, { failOpen: true });
    for (const id of [1, 2, 6, 7]) q.sock.deliver(pkt(id), 0);
    await k.settle();
    const loss = () => q.notices.filter((n) => n.kind === 'loss');
    expect(loss()).toEqual([expect.objectContaining({ count: 3, where: 'kernel', source: 'nfqueue' })]);
    expect(loss()[0].message).toMatch(
      /3 packet\(s\) on queue 3 never reached flowgrab .* accepted without a verdict \(fail-open\)/,
    );
    // The socket's drop counter saw the same 3, then 2 more not yet visible as a gap.
    q.sock.dropCount = 5;
    await k.until(() => loss().length >= 2, { what: 'the drop-counter loss' });
    expect(loss().map((n) => n.count)).toEqual([3, 2]);
    q.sock.deliver(pkt(10), 0); // ids 8, 9 were those 2: no new loss
    await k.until(() => q.got.length === 5, { what: 'packet 10' });
    await k.settle();
    expect(loss().map((n) => n.count)).toEqual([3, 2]);
    expect(q.got.map((p) => p.packetId)).toEqual([1, 2, 6, 7, 10]);
    expect(q.errors).toEqual([]);
    await q.close();
  });

  it('shares one socket between subscribers of the same queue; other options on it are refused', async () => {
    const k = queueKernel();
    const a = await open(k);
    const b = await open(k);
    expect(k.openSockets).toHaveLength(1);
    expect(nfqueueFeedRefs({ queue: 3 })).toBe(2);
    a.sock.deliver(pkt(1), 0);
    await k.settle();
    expect([a.got.length, b.got.length]).toEqual([1, 1]);
    a.got[0].verdict('accept');
    expect(() => b.got[0].verdict('drop')).toThrow(/already had a verdict/); // the first verdict wins
    const c = await open(k, { maxLen: 7 });
    expect(c.errors[0]).toMatchObject({
      code: 'FG_ERR_BUSY',
      message: expect.stringMatching(/already open in this process/),
    });
    await Promise.all([a.close(), b.close(), c.close()]);
    expect(k.openSockets).toHaveLength(0);
  });

  it('rejects bad options at once, every issue together', () => {
    expect(() => nfqueue({} as NfqueueOptionsInput)).toThrow(/nfqueue options: queue: required/);
    let err: (Error & { code?: string }) | undefined;
    try {
      nfqueue({
        queue: 70000,
        maxLen: 0,
        defaultVerdict: 'repeat' as 'accept',
        rules: { chains: ['PREROUTING' as 'INPUT'], match: ['-p', 'icmp', '-j', 'ACCEPT', 'a;b', '"x y"'] },
      });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('FG_ERR_INVALID_ARGUMENT');
    for (const want of [
      /queue: expected an integer from 0 to 65535, got 70000/,
      /maxLen: expected an integer from 1/,
      /defaultVerdict: expected one of accept, drop/,
      /rules\.chains\.0: expected one of INPUT, OUTPUT, FORWARD/,
      /rules\.match: -j is not a match option/,
      /rules\.match: "a;b" is not a plain iptables word/,
      /rules\.match: "\\"x y\\"" is not a plain iptables word/,
    ])
      expect(err?.message).toMatch(want);
    expect(() => nfqueue({ queue: 1, rules: { chains: [] } })).toThrow(/rules\.chains: expected at least one chain/);
  });
});

describe('verdict bookkeeping', () => {
  it('follows packet ids across the u32 wrap: gaps, batches and "never delivered"', () => {
    const b = new VerdictBook();
    expect(b.beyond(1)).toBe(true);
    expect(b.arrive(0xfffffffd, 0)).toBe(0); // a first id this far ahead is taken as the start, not as loss
    expect(b.arrive(0xffffffff, 0)).toBe(1);
    expect(b.arrive(0, 0)).toBe(0); // the kernel's counter wraps to 0
    expect(b.arrive(2, 5)).toBe(1);
    expect(b.beyond(1)).toBe(false);
    expect(b.beyond(3)).toBe(true);
    expect(b.expiredUpTo(0)).toBe(0);
    expect(b.takeUpTo(0, 'batch')).toBe(3); // 0xfffffffd, 0xffffffff and 0 are all "≤ 0"
    expect([...b.pending.keys()]).toEqual([2]);
    expect(b.take(0xffffffff, 'again')).toBe('decided');
    expect(b.take(1, 'x')).toBe('unknown');
  });

  it('counts every skipped id exactly, whatever the order of gaps (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.array(fc.nat({ max: 50 }), { maxLength: 40 }), (start, gaps) => {
        const b = new VerdictBook();
        let id = start;
        let lost = b.arrive(id, 0);
        for (const g of gaps) {
          id = (id + g + 1) >>> 0;
          lost += b.arrive(id, 0);
        }
        const before = start >= 1 && start <= 0x80000000 ? start - 1 : 0; // a fresh queue starts at 1
        expect(lost).toBe(before + gaps.reduce((s, g) => s + g, 0));
        expect(b.gapLoss).toBe(lost);
        expect(b.pending.size).toBe(gaps.length + 1);
      }),
    );
  });
});
