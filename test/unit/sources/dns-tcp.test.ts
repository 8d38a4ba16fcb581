/** Issue 14: TCP reassembly in any segment order, bounded per stream and across streams, with real memory counted. */
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_AHEAD, STREAM_OVERHEAD, TcpReassembler } from '../../../src/sources/dns/tcp.js';
import { TCP_FIN, TCP_SYN } from '../../../src/sources/packet.js';

const msg = (id: number, name: string) => dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name }] });
const framed = (...m: Buffer[]) => Buffer.concat(m.flatMap((x) => [Buffer.from([x.length >> 8, x.length & 255]), x]));
const seg = (key: string, seq: number, data: Buffer, flags = 0x18) => ({ key, seq: seq >>> 0, flags, data, now: 0 });

/** Feeds `stream` cut at `cuts`, in `order`; returns the ids of the messages that came out. */
function run(t: TcpReassembler, isn: number, stream: Buffer, cuts: number[], order: number[], key = 'k'): number[] {
  const bounds = [
    0,
    ...[...new Set(cuts)].filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b),
    stream.length,
  ];
  const pieces = bounds.slice(1).map((e, i) => ({ at: bounds[i], data: stream.subarray(bounds[i], e) }));
  t.push({ ...seg(key, isn, Buffer.alloc(0)), flags: TCP_SYN });
  const ids: number[] = [];
  const idx = pieces.map((_, i) => i).sort((a, b) => (order[a] ?? a) - (order[b] ?? b));
  for (const i of idx) {
    const r = t.push(seg(key, isn + 1 + pieces[i].at, pieces[i].data));
    for (const m of r.messages) ids.push(dnsPacket.decode(m).id ?? -1);
  }
  return ids;
}

describe('TCP reassembly, hostile orders and bounds', () => {
  it('gives the same messages for any segmentation, any order, retransmissions and sequence wrap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.nat(400), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 41 }),
        fc.constantFrom(1000, 0xffffff00),
        (n, cuts, order, isn) => {
          const ids = Array.from({ length: n }, (_, i) => i + 1);
          const stream = framed(...ids.map((id) => msg(id, `n${id}.example.test`)));
          expect(run(new TcpReassembler(), isn, stream, cuts, order)).toEqual(ids);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reassembles 20 000 one-byte segments sent in descending order, then the gap filler', () => {
    const t = new TcpReassembler();
    const big = framed(...Array.from({ length: 400 }, (_, i) => msg(i, `name${i}.descending.test`)));
    const n = Math.min(20_000, big.length);
    const stream = big.subarray(0, n);
    t.push({ ...seg('d', 0, Buffer.alloc(0)), flags: TCP_SYN });
    let out = 0;
    for (let i = n - 1; i >= 1; i--) out += t.push(seg('d', 1 + i, stream.subarray(i, i + 1))).messages.length;
    expect(out).toBe(0);
    // Pending bytes are counted at their real cost: window bytes and flags, not 1 byte per segment.
    expect(t.stats().bytes).toBeGreaterThanOrEqual(2 * n + STREAM_OVERHEAD);
    out += t.push(seg('d', 1, stream.subarray(0, 1))).messages.length;
    let expected = 0;
    for (let o = 0; o + 2 <= n && o + 2 + big.readUInt16BE(o) <= n; o += 2 + big.readUInt16BE(o)) expected++;
    expect(out).toBe(expected);
  });

  it('gives up a stream whose window (holes included) passes its bound', () => {
    const t = new TcpReassembler({ maxStreamBytes: 1000 });
    t.push({ ...seg('w', 0, Buffer.alloc(0)), flags: TCP_SYN });
    expect(t.push(seg('w', 1 + 990, Buffer.alloc(5))).dropped).toBeUndefined();
    expect(t.push(seg('w', 1 + 999, Buffer.alloc(5))).dropped).toMatch(/exceeded 1000 bytes/);
    expect(t.size).toBe(0);
    expect(t.stats()).toMatchObject({ dropped: 1, bytes: 0 });
  });

  it('keeps all streams together under the global bound, evicting the least recently used and counting them', () => {
    const t = new TcpReassembler({ maxTotalBytes: 64 * 1024, maxStreamBytes: 16 * 1024 });
    let evicted = 0;
    for (let i = 0; i < 50; i++) {
      t.push({ ...seg(`s${i}`, 0, Buffer.alloc(0)), flags: TCP_SYN });
      // A far byte forces a large window: 8 KiB data + 8 KiB flags of real memory for one byte.
      evicted += t.push(seg(`s${i}`, 1 + 8000, Buffer.alloc(1))).evicted ?? 0;
      expect(t.stats().bytes).toBeLessThanOrEqual(64 * 1024);
    }
    expect(evicted).toBeGreaterThan(0);
    expect(t.stats().evicted).toBe(evicted);
    expect(t.size).toBe(50 - evicted);
  });

  it('starts over on a SYN with a new sequence number (a new connection on the same ports)', () => {
    const t = new TcpReassembler();
    const s = framed(msg(5, 'again.test'));
    t.push({ ...seg('r', 100, Buffer.alloc(0)), flags: TCP_SYN });
    t.push(seg('r', 101, s.subarray(0, 7)));
    t.push({ ...seg('r', 5000, Buffer.alloc(0)), flags: TCP_SYN });
    expect(t.stats().bytes).toBe(STREAM_OVERHEAD);
    expect(t.push(seg('r', 5001, s)).messages.map((m) => dnsPacket.decode(m).id)).toEqual([5]);
  });

  it('bounds the number of streams by evicting the oldest, and forgets a stream on FIN', () => {
    const t = new TcpReassembler({ maxStreams: 3 });
    for (let i = 0; i < 5; i++) t.push(seg(`c${i}`, 10, Buffer.from([0, 12])));
    expect(t.size).toBe(3);
    expect(t.stats().evicted).toBe(2);
    t.push(seg('c4', 12, Buffer.alloc(12, 1), TCP_FIN));
    expect(t.size).toBe(2);
    expect(t.stats().bytes).toBe(2 * (STREAM_OVERHEAD + 2 * 256));
  });

  it('gives up a stream at a message length under a DNS header: a segment of zeros is not 730 messages', () => {
    const t = new TcpReassembler();
    const zeros = t.push(seg('z', 1000, Buffer.alloc(1460)));
    expect(zeros.messages).toEqual([]);
    expect(zeros.dropped).toMatch(/under a DNS header; not DNS/);
    expect(t.size).toBe(0);
    expect(t.stats()).toMatchObject({ streams: 0, bytes: 0, dropped: 1 });
    // The messages before the bad length still come out; nothing after it does.
    const good = framed(msg(7, 'a.example.test'), msg(8, 'b.example.test'));
    const r = t.push(
      seg('g', 5000, Buffer.concat([good, Buffer.from([0, 11]), Buffer.alloc(11), framed(msg(9, 'c.test'))])),
    );
    expect(r.messages.map((m) => dnsPacket.decode(m).id)).toEqual([7, 8]);
    expect(r.dropped).toBeDefined();
    expect(t.size).toBe(0);
    // A length of exactly a header is a (header-only) message.
    const h = t.push(seg('h', 1, Buffer.concat([Buffer.from([0, 12]), Buffer.alloc(12)])));
    expect(h.messages).toHaveLength(1);
    expect(h.dropped).toBeUndefined();
  });

  it('a byte far past the first missing one is not kept: no window for it; the stream goes on', () => {
    const t = new TcpReassembler();
    const isn = 5000;
    t.push({ ...seg('far', isn, Buffer.alloc(0)), flags: TCP_SYN });
    for (let i = 0; i < 100; i++) t.push(seg('far', isn + 1 + MAX_AHEAD + 1000 * i, Buffer.from([i])));
    expect(t.stats().ahead).toBe(100);
    expect(t.stats().bytes).toBeLessThan(STREAM_OVERHEAD + 4096);
    // Within reach, out of order: kept, and the message comes out once its start arrives.
    const m = framed(msg(7, 'in.order.test'));
    t.push(seg('far', isn + 1 + 10, m.subarray(10)));
    const out = t.push(seg('far', isn + 1, m.subarray(0, 10))).messages;
    expect(out.map((x) => dnsPacket.decode(x).id)).toEqual([7]);
    expect(t.stats().ahead).toBe(100);
  });
});
