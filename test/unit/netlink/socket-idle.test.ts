/**
 * The request idle check: one timer per request that looks at the time of the
 * last reply, instead of a timer refreshed per reply. A dump that keeps
 * talking outlives the idle timeout; one that falls silent mid-way fails.
 * The clock is vitest's (timers and Date faked, setImmediate real so the
 * fake kernel still delivers): time passes only when the test says so.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NLM_F_DUMP, NLM_F_MULTI, NLMSG_DONE } from '../../../src/netlink/enums.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import { NetlinkSocket } from '../../../src/netlink/socket.js';
import { FakeKernel, type FakeSocket } from '../../../src/testing/fake-netlink.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

function kernel() {
  const k = new FakeKernel();
  const reqs: { req: NetlinkMessage; sock: FakeSocket }[] = [];
  k.handler = (req, sock) => {
    reqs.push({ req, sock });
    return [];
  };
  const part = (i: number, body: string) =>
    reqs[i].sock.deliver(
      encodeMessage({ type: 0x100, flags: NLM_F_MULTI, seq: reqs[i].req.seq, pid: 0 }, Buffer.from(body)),
      0,
    );
  const done = (i: number) =>
    reqs[i].sock.deliver(
      encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: reqs[i].req.seq, pid: 0 }, Buffer.alloc(4)),
      0,
    );
  return { k, part, done };
}

describe('NetlinkSocket request idle timeout', () => {
  it('a dump that keeps sending outlives its idle timeout many times over', async () => {
    const { k, part, done } = kernel();
    const s = NetlinkSocket.open({ protocol: 12 }, k.transport);
    const p = s.request(0x101, NLM_F_DUMP, Buffer.alloc(4), { idleTimeoutMs: 80 });
    for (let i = 0; i < 8; i++) {
      await vi.advanceTimersByTimeAsync(30); // 240 ms in all, never 80 ms quiet
      part(0, `p${i}`);
      await k.settle(); // delivered (and stamped) at this time
    }
    await vi.advanceTimersByTimeAsync(10);
    done(0);
    const msgs = await p;
    expect(msgs.map((m) => m.payload.toString())).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
    s.close();
  });

  it('fails a dump that falls silent mid-way, naming the operation', async () => {
    const { k, part } = kernel();
    const s = NetlinkSocket.open({ protocol: 12 }, k.transport);
    const p = s.request(0x101, NLM_F_DUMP, Buffer.alloc(4), { idleTimeoutMs: 60, op: 'ct dump' }).catch((e) => e);
    await vi.advanceTimersByTimeAsync(20);
    part(0, 'first');
    await k.settle();
    await vi.advanceTimersByTimeAsync(60); // 60 ms without a reply
    const err = await p;
    expect(err).toMatchObject({ code: 'FG_ERR_TIMEOUT', op: 'ct dump' });
    expect(err.message).toBe('ct dump: no reply in 60 ms');
    s.close();
  });
});
