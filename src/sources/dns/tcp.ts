/**
 * DNS over TCP: messages are length-prefixed and may span segments, or
 * several may share one. Reassembles each direction of each connection in
 * sequence order, bounded in memory (bytes per stream, number of streams)
 * and time (idle streams expire).
 */
import { TCP_FIN, TCP_RST, TCP_SYN } from '../packet.js';

export interface TcpLimits {
  /** Bytes buffered per stream beyond which it is given up. */
  maxStreamBytes: number;
  maxStreams: number;
  idleMs: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = { maxStreamBytes: 256 * 1024, maxStreams: 4096, idleMs: 30_000 };

interface Stream {
  /** Next sequence number expected; undefined until the first segment fixes it. */
  next?: number;
  buf: Buffer;
  /** Out-of-order segments by sequence number. */
  pending: Map<number, Buffer>;
  pendingBytes: number;
  seen: number;
}

export interface TcpSegment {
  key: string;
  seq: number;
  flags: number;
  data: Buffer;
  now: number;
}

export type TcpResult = { messages: Buffer[]; dropped?: string };

const seqAfter = (a: number, b: number) => ((a - b) | 0) > 0;

export class TcpReassembler {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly limits: TcpLimits = DEFAULT_TCP_LIMITS) {}

  get size(): number {
    return this.streams.size;
  }

  /** Feeds one segment; returns the complete DNS messages (without their length prefix) it finished. */
  push(s: TcpSegment): TcpResult {
    if (s.flags & (TCP_RST | TCP_FIN) && s.data.length === 0) {
      this.streams.delete(s.key);
      return { messages: [] };
    }
    let st = this.streams.get(s.key);
    if (!st) {
      if (s.data.length === 0 && !(s.flags & TCP_SYN)) return { messages: [] };
      if (this.streams.size >= this.limits.maxStreams) this.expire(s.now, true);
      st = { buf: Buffer.alloc(0), pending: new Map(), pendingBytes: 0, seen: s.now };
      this.streams.set(s.key, st);
    }
    st.seen = s.now;
    if (s.flags & TCP_SYN) {
      st.next = (s.seq + 1) >>> 0;
      return { messages: [] };
    }
    if (s.data.length === 0) return { messages: [] };
    st.next ??= s.seq;
    if (seqAfter(s.seq, st.next)) {
      // A gap: hold the segment until what precedes it arrives.
      if (!st.pending.has(s.seq)) {
        st.pending.set(s.seq, Buffer.from(s.data));
        st.pendingBytes += s.data.length;
      }
    } else {
      this.append(st, s.seq, s.data);
      for (let more = true; more; ) {
        more = false;
        for (const [seq, data] of st.pending) {
          if (seqAfter(seq, st.next!)) continue;
          st.pending.delete(seq);
          st.pendingBytes -= data.length;
          this.append(st, seq, data);
          more = true;
        }
      }
    }
    if (st.buf.length + st.pendingBytes > this.limits.maxStreamBytes) {
      this.streams.delete(s.key);
      return { messages: [], dropped: `TCP stream ${s.key} exceeded ${this.limits.maxStreamBytes} bytes` };
    }
    const messages = this.extract(st);
    if (s.flags & (TCP_FIN | TCP_RST)) this.streams.delete(s.key);
    return { messages };
  }

  /** Drops streams idle for longer than the limit (or the oldest, when full). Returns how many. */
  expire(now: number, makeRoom = false): number {
    let n = 0;
    let oldest: [string, number] | undefined;
    for (const [k, st] of this.streams) {
      if (now - st.seen > this.limits.idleMs) {
        this.streams.delete(k);
        n++;
      } else if (!oldest || st.seen < oldest[1]) oldest = [k, st.seen];
    }
    if (makeRoom && n === 0 && oldest) {
      this.streams.delete(oldest[0]);
      n++;
    }
    return n;
  }

  private append(st: Stream, seq: number, data: Buffer): void {
    // Skip bytes we already have (retransmissions, overlaps).
    const skip = (st.next! - seq) | 0;
    if (skip >= data.length) return;
    const fresh = skip > 0 ? data.subarray(skip) : data;
    st.buf = st.buf.length ? Buffer.concat([st.buf, fresh]) : Buffer.from(fresh);
    st.next = (st.next! + fresh.length) >>> 0;
  }

  private extract(st: Stream): Buffer[] {
    const out: Buffer[] = [];
    let o = 0;
    while (st.buf.length - o >= 2) {
      const len = st.buf.readUInt16BE(o);
      if (st.buf.length - o - 2 < len) break;
      out.push(st.buf.subarray(o + 2, o + 2 + len));
      o += 2 + len;
    }
    if (o > 0) st.buf = st.buf.subarray(o);
    return out;
  }
}
