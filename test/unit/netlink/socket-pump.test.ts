/**
 * Dumps read in place are read on straight from the socket (RawTransport.readNow):
 * every reply arrives once and in order, the event loop turns between batches,
 * and whatever outlives a call (events, collected replies) is a copy, since
 * readNow's buffer is reused.
 */
import { describe, expect, it } from 'vitest';
import { NLM_F_DUMP, NLM_F_MULTI, NLMSG_DONE } from '../../../src/netlink/enums.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import { NetlinkSocket } from '../../../src/netlink/socket.js';
import type { RawTransport, TransportHandlers } from '../../../src/netlink/transport.js';
import { until } from '../../helpers/wait.js';

/** A transport whose queued datagrams the test releases: the first as the package would, the rest through readNow. */
class QueueTransport implements RawTransport {
  readonly port = 4242;
  readonly queue: Buffer[] = [];
  readonly sent: Buffer[] = [];
  handlers: TransportHandlers = { datagram: () => {}, error: () => {} };
  readNowCalls = 0;
  transientDatagrams = 0;
  private readonly shared = Buffer.alloc(64 * 1024);
  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }
  send(buf: Buffer): void {
    this.sent.push(Buffer.from(buf));
  }
  /** The package's own read: one datagram in a buffer of its own. */
  deliverOne(): void {
    const b = this.queue.shift();
    if (b) this.handlers.datagram(b, 0);
  }
  readNow(max: number): number {
    this.readNowCalls++;
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const b = this.queue.shift() as Buffer;
      b.copy(this.shared);
      this.transientDatagrams++;
      this.handlers.datagram(this.shared.subarray(0, b.length), 0, true);
      this.shared.fill(0xee); // what the next read would do to anything kept from this one
      n++;
    }
    return n;
  }
  addMembership(): void {}
  dropMembership(): void {}
  drops(): number {
    return 0;
  }
  recvBufferSize(): number {
    return 1 << 20;
  }
  close(): void {}
}

const seqOf = (t: QueueTransport) => t.sent[0].readUInt32LE(8);
const part = (seq: number, i: number) => {
  const body = Buffer.alloc(8);
  body.writeUInt32LE(i, 4);
  return encodeMessage({ type: 0x100, flags: NLM_F_MULTI, seq, pid: 0 }, body);
};
const done = (seq: number) => encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq, pid: 0 }, Buffer.alloc(4));

describe('NetlinkSocket dump pump', () => {
  it('reads a long dump read in place through readNow, each reply once and in order, yielding between batches', async () => {
    const t = new QueueTransport();
    const s = new NetlinkSocket(t);
    const seen: number[] = [];
    const p = s.request(0x101, NLM_F_DUMP, Buffer.alloc(4), {
      onPayload: (b, start) => seen.push(b.readUInt32LE(start + 4)),
    });
    const seq = seqOf(t);
    const N = 1000;
    for (let i = 0; i < N; i++) t.queue.push(part(seq, i));
    t.queue.push(done(seq));
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    t.deliverOne();
    await p;
    clearInterval(ticker);
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(t.transientDatagrams).toBe(N); // all but the first, plus DONE
    expect(t.readNowCalls).toBeGreaterThan(N / 128); // batches, with the event loop turning between them
    s.close();
  });

  it('copies what outlives a transient datagram: events and the end of the dump', async () => {
    const t = new QueueTransport();
    const s = new NetlinkSocket(t);
    const events: NetlinkMessage[] = [];
    s.onEvent((m) => events.push(m));
    const p = s.request(0x101, NLM_F_DUMP, Buffer.alloc(4), { onPayload: () => {} });
    const seq = seqOf(t);
    t.queue.push(part(seq, 0));
    // An unsolicited message (seq 0) in the middle of the dump, then the rest.
    t.queue.push(encodeMessage({ type: 0x100, flags: 0, seq: 0, pid: 0 }, Buffer.from('kept intact')));
    t.queue.push(part(seq, 1));
    t.queue.push(done(seq));
    t.deliverOne();
    await p;
    await until(() => events.length === 1, 'the event');
    expect(events[0].payload.toString()).toBe('kept intact');
    s.close();
  });

  it('leaves requests that collect their replies to the transport’s own reading', async () => {
    const t = new QueueTransport();
    const s = new NetlinkSocket(t);
    const p = s.request(0x101, NLM_F_DUMP, Buffer.alloc(4));
    const seq = seqOf(t);
    t.queue.push(part(seq, 0), part(seq, 1), done(seq));
    t.deliverOne();
    t.deliverOne();
    t.deliverOne();
    const replies = await p;
    expect(replies.map((m) => m.payload.readUInt32LE(4))).toEqual([0, 1]);
    expect(t.readNowCalls).toBe(0);
    s.close();
  });
});
