/**
 * DNS over TCP: messages are length-prefixed and may span segments, or
 * several may share one. Each direction of each connection is reassembled
 * into a byte window: a segment is copied to its place and its bytes are
 * flagged present, so segments in any order cost O(their length) — no
 * per-segment objects, no rescans (issue 14: the old map of pending
 * segments was quadratic and under-counted memory 100×).
 *
 * Bounds: a stream's window (from the first unread byte to the furthest
 * byte received, holes included) may not exceed `maxStreamBytes`; the real
 * memory of all streams (window data + presence flags + a fixed per-stream
 * overhead) may not exceed `maxTotalBytes`, least recently used streams
 * being evicted first; at most `maxStreams` streams; idle ones expire.
 * A segment more than MAX_AHEAD past the first missing byte is not kept
 * (counted in `ahead`): one byte 256 KiB on cost each stream a 512 KiB
 * window (a TCP DNS message is at most 65 537 bytes with its length).
 */

import { AgedMap } from '../../util/aged-map.js';
import { TCP_FIN, TCP_RST, TCP_SYN } from '../packet.js';
import { DNS_HEADER } from './wire.js';

export interface TcpLimits {
  /** Window bytes (holes included) a stream may hold before it is given up. */
  maxStreamBytes: number;
  maxStreams: number;
  idleMs: number;
  /** Real memory (bytes) all streams together may hold; LRU streams are evicted past it. */
  maxTotalBytes: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  maxStreamBytes: 256 * 1024,
  maxStreams: 4096,
  idleMs: 30_000,
  maxTotalBytes: 64 * 1024 * 1024,
};

/** Estimated bytes of a stream without its window: the object, its map entry and key string. */
export const STREAM_OVERHEAD = 256;
const MIN_WINDOW = 256;
/** How far past the first missing byte a segment may end and be kept: two largest messages with their lengths. */
export const MAX_AHEAD = 2 * (2 + 0xffff);

interface Stream {
  /** Sequence number of win[0]; undefined until a SYN or the first data fixes it. */
  base?: number;
  win: Buffer;
  /** 1 where win holds a received byte. */
  have: Uint8Array;
  /** Bytes before this offset are all present. */
  contig: number;
  /** One past the furthest byte received. */
  high: number;
  /** Bytes before this offset were handed out as messages. */
  read: number;
  seen: number;
  cost: number;
}

export interface TcpSegment {
  key: string;
  seq: number;
  flags: number;
  data: Buffer;
  now: number;
}

export type TcpResult = {
  messages: Buffer[];
  /** Why this segment's stream was given up. */
  dropped?: string;
  /** Other streams evicted to stay within the global memory bound or stream count. */
  evicted?: number;
};

export interface TcpStats {
  streams: number;
  /** Real bytes held (windows, flags, per-stream overhead). */
  bytes: number;
  /** Streams given up over their own bound, evicted for the global bounds, or expired. */
  dropped: number;
  evicted: number;
  expired: number;
  /** Segments not kept: they ended more than MAX_AHEAD past the first missing byte. */
  ahead: number;
}

const EMPTY = Buffer.alloc(0);

export class TcpReassembler {
  /** Least recently used first (AgedMap: a Map evicted at its front walked its deleted slots on every eviction). */
  private readonly streams = new AgedMap<string, Stream>();
  private readonly limits: TcpLimits;
  private total = 0;
  private counts = { dropped: 0, evicted: 0, expired: 0, ahead: 0 };

  constructor(limits: Partial<TcpLimits> = {}) {
    this.limits = { ...DEFAULT_TCP_LIMITS, ...limits };
    this.limits.maxStreams = Math.max(1, this.limits.maxStreams);
  }

  get size(): number {
    return this.streams.size;
  }

  stats(): TcpStats {
    return { streams: this.streams.size, bytes: this.total, ...this.counts };
  }

  /** Feeds one segment; returns the complete DNS messages (without their length prefix) it finished. */
  push(s: TcpSegment): TcpResult {
    if (s.flags & (TCP_RST | TCP_FIN) && s.data.length === 0) {
      this.remove(s.key);
      return { messages: [] };
    }
    let evicted = 0;
    let st = this.streams.get(s.key);
    if (st) this.streams.renew(s.key, st);
    else {
      if (s.data.length === 0 && !(s.flags & TCP_SYN)) return { messages: [] };
      while (this.streams.size >= this.limits.maxStreams) evicted += this.evictOldest();
      st = { win: EMPTY, have: new Uint8Array(0), contig: 0, high: 0, read: 0, seen: s.now, cost: STREAM_OVERHEAD };
      this.total += st.cost;
      this.streams.set(s.key, st);
    }
    st.seen = s.now;
    const result = (r: TcpResult): TcpResult => (evicted ? { ...r, evicted } : r);
    if (s.flags & TCP_SYN) {
      const base = (s.seq + 1) >>> 0;
      // A SYN with another sequence number starts a new connection on the same ports: forget the old bytes.
      if (st.base !== undefined && st.base !== base) this.reset(st);
      st.base = base;
      return result({ messages: [] });
    }
    if (s.data.length === 0) return result({ messages: [] });
    st.base ??= s.seq;
    const dropped = this.place(s.key, st, (s.seq - st.base) | 0, s.data);
    if (dropped) return result({ messages: [], dropped });
    evicted += this.fitTotal(s.key);
    if (!this.streams.has(s.key)) {
      return result({
        messages: [],
        dropped: `TCP stream ${s.key} evicted: all streams over ${this.limits.maxTotalBytes} bytes`,
      });
    }
    const messages = this.extract(st);
    if (st.read < 0) {
      // A length under a DNS header: not a DNS stream (or one we lost track of). Every following "message"
      // would be garbage read at a guessed boundary; a segment of zeros would make one record per two bytes.
      this.remove(s.key);
      this.counts.dropped++;
      return result({ messages, dropped: `TCP stream ${s.key}: a message length under a DNS header; not DNS` });
    }
    if (s.flags & (TCP_FIN | TCP_RST)) this.remove(s.key);
    return result({ messages });
  }

  /** Drops streams idle for longer than the limit. Returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const [k, st] of this.streams) {
      if (now - st.seen > this.limits.idleMs) {
        this.remove(k);
        n++;
      }
    }
    this.counts.expired += n;
    return n;
  }

  private reset(st: Stream): void {
    this.total -= st.cost - STREAM_OVERHEAD;
    st.cost = STREAM_OVERHEAD;
    st.win = EMPTY;
    st.have = new Uint8Array(0);
    st.contig = st.high = st.read = 0;
  }

  private remove(key: string): void {
    const st = this.streams.get(key);
    if (!st) return;
    this.total -= st.cost;
    this.streams.delete(key);
  }

  /** Evicts the least recently used stream, unless that is `except` (the one being fed, which is the newest). */
  private evictOldest(except?: string): number {
    const k = this.streams.oldestKey();
    if (k === undefined || k === except) return 0;
    this.remove(k);
    this.counts.evicted++;
    return 1;
  }

  /** Evicts LRU streams other than `key` while the total is over the bound; then `key` itself. */
  private fitTotal(key: string): number {
    let n = 0;
    while (this.total > this.limits.maxTotalBytes && this.streams.size > 1 && this.evictOldest(key)) n++;
    if (this.total > this.limits.maxTotalBytes) {
      this.remove(key);
      this.counts.dropped++;
    }
    return n;
  }

  /** Copies `data` (starting `rel` bytes after base) into the window. Returns a reason when the stream is given up. */
  private place(key: string, st: Stream, rel: number, data: Buffer): string | undefined {
    // Bytes before contig are here already (retransmissions, overlaps); bytes before base likewise.
    const from = rel < st.contig ? st.contig - rel : 0;
    if (from >= data.length) return undefined;
    let start = rel + from;
    let end = rel + data.length;
    if (end - st.contig > MAX_AHEAD) {
      this.counts.ahead++;
      return undefined;
    }
    if (end - st.read > this.limits.maxStreamBytes) {
      this.remove(key);
      this.counts.dropped++;
      return `TCP stream ${key} exceeded ${this.limits.maxStreamBytes} bytes`;
    }
    if (end > st.win.length) {
      // Moving the unread bytes down pays when at least half the window was read; else the window grows.
      const shift = st.read >= st.win.length / 2 ? this.compact(st) : 0;
      start -= shift;
      end -= shift;
      if (end > st.win.length) this.grow(st, end);
    }
    data.copy(st.win, start, from);
    st.have.fill(1, start, end);
    if (end > st.high) st.high = end;
    let c = st.contig;
    while (c < st.high && st.have[c] === 1) c++;
    st.contig = c;
    return undefined;
  }

  /** Moves the unread bytes to the window's start; returns by how much offsets moved. */
  private compact(st: Stream): number {
    const r = st.read;
    if (r === 0) return 0;
    st.win.copyWithin(0, r, st.high);
    st.have.copyWithin(0, r, st.high);
    st.have.fill(0, st.high - r, st.high);
    st.base = (st.base! + r) >>> 0;
    st.contig -= r;
    st.high -= r;
    st.read = 0;
    return r;
  }

  private grow(st: Stream, need: number): void {
    let cap = Math.max(MIN_WINDOW, st.win.length);
    while (cap < need) cap *= 2;
    const win = Buffer.allocUnsafe(cap);
    st.win.copy(win, 0, 0, st.high);
    const have = new Uint8Array(cap);
    have.set(st.have.subarray(0, st.high));
    const cost = STREAM_OVERHEAD + 2 * cap;
    this.total += cost - st.cost;
    st.cost = cost;
    st.win = win;
    st.have = have;
  }

  /**
   * Hands out the complete length-prefixed messages in [read, contig), as copies (the window is reused). A
   * length under a DNS header ends the stream: the messages before it are handed out and `read` is set to -1.
   */
  private extract(st: Stream): Buffer[] {
    const out: Buffer[] = [];
    let o = st.read;
    while (st.contig - o >= 2) {
      const len = st.win.readUInt16BE(o);
      if (len < DNS_HEADER) {
        st.read = -1;
        return out;
      }
      if (st.contig - o - 2 < len) break;
      out.push(Buffer.from(st.win.subarray(o + 2, o + 2 + len)));
      o += 2 + len;
    }
    st.read = o;
    if (o === st.high && o > 0) {
      // Everything read: restart the window at its start, for free.
      st.have.fill(0, 0, o);
      st.base = (st.base! + o) >>> 0;
      st.contig = st.high = st.read = 0;
    } else if (o > st.win.length / 2) this.compact(st);
    return out;
  }
}
