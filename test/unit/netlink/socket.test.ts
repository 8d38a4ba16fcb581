import { describe, expect, it } from 'vitest';
import { FlowgrabError } from '../../../src/errors.js';
import { NLM_F_DUMP, NLM_F_REQUEST } from '../../../src/netlink/enums.js';
import { encodeMessage } from '../../../src/netlink/nlmsg.js';
import { DropCounter, NetlinkOpError, NetlinkSocket } from '../../../src/netlink/socket.js';
import { ackReply, dumpReply, FakeKernel } from '../../../src/testing/fake-netlink.js';

const open = (k: FakeKernel) => NetlinkSocket.open({ protocol: 12 }, k.transport);

describe('NetlinkSocket over the fake kernel', () => {
  it('collects a multipart dump until NLMSG_DONE, matched by sequence number', async () => {
    const k = new FakeKernel();
    k.handler = (req) => [dumpReply(req, 0x100, [Buffer.from('a'), Buffer.from('bb')])];
    const s = open(k);
    const msgs = await s.request(0x101, NLM_F_DUMP, Buffer.alloc(4));
    expect(msgs.map((m) => m.payload.toString())).toEqual(['a', 'bb']);
    const sent = k.sockets[0].sent[0];
    expect(sent.flags & NLM_F_REQUEST).toBeTruthy();
    expect(sent.flags & NLM_F_DUMP).toBe(NLM_F_DUMP);
    s.close();
  });

  it('turns NLMSG_ERROR into NetlinkOpError with op, errno and its name', async () => {
    const k = new FakeKernel();
    k.handler = (req) => [ackReply(req, 1)];
    const s = open(k);
    const err = await s.request(0x102, 0, Buffer.alloc(4), { op: 'ctnetlink delete' }).catch((e) => e);
    expect(err).toBeInstanceOf(NetlinkOpError);
    expect(err).toMatchObject({ op: 'ctnetlink delete', errno: 1, errnoName: 'EPERM', code: 'FG_ERR_PERMISSION' });
    expect(err.message).toBe('ctnetlink delete: EPERM');
    s.close();
  });

  it('resolves a plain request at its ACK', async () => {
    const k = new FakeKernel();
    k.handler = (req) => [ackReply(req, 0)];
    const s = open(k);
    await expect(s.request(0x401, 0, Buffer.alloc(4))).resolves.toEqual([]);
    s.close();
  });

  it('times out when the kernel stays silent, and close() rejects pending requests', async () => {
    const k = new FakeKernel();
    const s = open(k);
    const e1 = await s.request(1, 0, Buffer.alloc(0), { idleTimeoutMs: 20, op: 'x' }).catch((e) => e);
    expect(e1).toMatchObject({ code: 'FG_ERR_TIMEOUT' });
    const p = s.request(1, 0, Buffer.alloc(0));
    s.close();
    s.close(); // idempotent
    await expect(p).rejects.toMatchObject({ code: 'FG_ERR_CLOSED' });
    expect(k.sockets[0].closed).toBe(true);
  });

  it('routes unsolicited messages to event listeners; a throwing listener harms nobody', async () => {
    const k = new FakeKernel();
    const s = open(k);
    s.joinGroup(1);
    const got: number[] = [];
    const errors: Error[] = [];
    s.onEvent(() => {
      throw new Error('boom');
    });
    s.onEvent((m, groups) => got.push(m.type, groups));
    s.onError((e) => errors.push(e));
    k.multicast(1, encodeMessage({ type: 0x100, flags: 0, seq: 0, pid: 0 }, Buffer.alloc(4)));
    await k.settle();
    expect(got).toEqual([0x100, 1]);
    expect(errors.map((e) => e.message)).toEqual(['boom']);
    s.close();
  });

  it('reports a malformed datagram as an error and keeps going', async () => {
    const k = new FakeKernel();
    const s = open(k);
    const errors: Error[] = [];
    s.onError((e) => errors.push(e));
    k.sockets[0].deliver(Buffer.from([1, 2, 3]), 0);
    await k.settle();
    expect(errors[0]).toBeInstanceOf(FlowgrabError);
    expect(errors[0]).toMatchObject({ code: 'FG_ERR_DECODE' });
    s.close();
  });
});

describe('NetlinkSocket and trailing garbage (issue 14)', () => {
  it('delivers the valid messages of a datagram and reports the garbage after them as a DecodeError', async () => {
    const k = new FakeKernel();
    const s = open(k);
    const events: string[] = [];
    const errors: FlowgrabError[] = [];
    s.onEvent((m) => events.push(m.payload.toString()));
    s.onError((e) => errors.push(e as FlowgrabError));
    const dgram = Buffer.from(
      '14000000030002000000000000000000616263641400000003000200000000000000000061626364cafebabecafebabe',
      'hex',
    );
    dgram.writeUInt16LE(0x105, 4); // not NLMSG_DONE: events
    dgram.writeUInt16LE(0x105, 24);
    k.openSockets[0].deliver(dgram, 1);
    await k.settle(); // the fake kernel delivers on a later turn
    expect(events).toEqual(['abcd', 'abcd']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'FG_ERR_DECODE', message: expect.stringMatching(/8 bytes dropped/) });
    s.close();
  });
});

describe('DropCounter', () => {
  it("counts the kernel's drops across the wrap of its u32 counter, and nothing for a closed socket's 0", () => {
    const k = new FakeKernel();
    const s = open(k);
    const fake = k.sockets[0];
    const drops = new DropCounter(s);
    expect(drops.take()).toBe(0);
    fake.dropCount = 0xffff_fff0;
    expect(drops.take()).toBe(0xffff_fff0);
    fake.dropCount = 0x10; // wrapped: 0x20 more
    expect(drops.take()).toBe(0x20);
    expect(drops.take()).toBe(0);
    fake.dropCount = 0x15;
    expect(drops.take()).toBe(5);
    fake.dropCount = 0; // a transport closed under the socket (its reader gone) reads 0: nothing lost …
    expect(drops.take()).toBe(0);
    fake.dropCount = 0x17; // … and the count goes on from the last real reading
    expect(drops.take()).toBe(2);
    fake.dropCount = 0xffff_ffff;
    expect(drops.take()).toBe(0xffff_ffff - 0x17);
    fake.dropCount = 0; // a wrap that lands on 0 exactly is counted at the next reading
    expect(drops.take()).toBe(0);
    fake.dropCount = 3;
    expect(drops.take()).toBe(4);
    s.close(); // a closed socket reads 0: no wrap, nothing lost
    fake.dropCount = 0;
    expect(drops.take()).toBe(0);
  });
});

describe('NetlinkSocket when its transport abandons the requests waiting', () => {
  it('fails every waiting request with the transport’s error at once, and takes new requests after', async () => {
    const k = new FakeKernel();
    const s = open(k);
    const fake = k.sockets[0];
    const errors: Error[] = [];
    // An error listener that asks again at once: its request is not among those abandoned.
    let retry: Promise<unknown> | undefined;
    s.onError((e) => {
      errors.push(e);
      retry = s.request(0x104, 0, Buffer.alloc(4), { idleTimeoutMs: 60_000 });
    });
    // No answers: both requests wait (for a minute, by their idle timers).
    const a = s.request(0x101, NLM_F_DUMP, Buffer.alloc(4), { idleTimeoutMs: 60_000 });
    const b = s.request(0x102, 0, Buffer.alloc(4), { idleTimeoutMs: 60_000 });
    const err = new FlowgrabError('FG_ERR_NETLINK', 'recvmmsg: EIO', { op: 'recvmsg', errno: 5 });
    fake.abandon(err);
    await expect(a).rejects.toBe(err);
    await expect(b).rejects.toBe(err);
    expect(errors).toEqual([err]);
    const seq = k.sockets[0].sent.at(-1)?.seq ?? 0;
    k.sockets[0].deliver(ackReply({ type: 0x104, flags: 0, seq, pid: 0, payload: Buffer.alloc(4) }), 0);
    await expect(retry).resolves.toEqual([]);
    k.handler = (req) => [ackReply(req)];
    await expect(s.request(0x103, 0, Buffer.alloc(4))).resolves.toEqual([]);
    s.close();
  });
});
