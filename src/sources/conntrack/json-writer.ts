/**
 * NDJSON for conntrack records written straight into a large byte buffer:
 * no string per record (conntrackToJson builds one, then it is copied again
 * as UTF-8). Its output is byte for byte conntrackToJson's plus "\n" (a test
 * holds them equal). ASCII goes in byte by byte; a string that needs escaping
 * or is not ASCII goes through JSON.stringify and a UTF-8 write.
 */
import { attrEnd, attrNeed, attrNext, attrType, cStringAt, ipAt, u16beAt, u32beAt } from '../../netlink/attr.js';
import * as C from '../../netlink/conntrack/enums.js';
import { ctKind } from '../../netlink/conntrack/messages.js';
import { conntrackRecordAt, nsToMs, SAFE_HI, statusList, tcpState, u64Sat } from './decode.js';
import type { ConntrackEnd, ConntrackRecord } from './record.js';

const CHUNK = 1 << 20;

/** ASCII text as bytes, encoded once: copying bytes is cheaper than charCodeAt per character. */
const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
/** "00" … "99": two digits per division. */
const PAIRS = bytes(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''));

/** The constant pieces of a record: keys with their punctuation. */
const K = {
  type: bytes('{"type":'),
  id: bytes(',"id":'),
  family: bytes(',"family":'),
  proto: bytes(',"proto":'),
  protonum: bytes(',"protonum":'),
  orig: bytes(',"orig":'),
  reply: bytes(',"reply":'),
  state: bytes(',"state":'),
  status: bytes(',"status":['),
  helper: bytes(',"helper":'),
  labels: bytes(',"labels":'),
  delta: bytes(',"delta":'),
  resync: bytes(',"resync":true'),
  netns: bytes(',"netns":'),
  ts: bytes(',"ts":'),
  close: bytes('}\n'),
  srcKey: bytes('{"src":'),
  dstKey: bytes(',"dst":'),
  icmp: bytes(',"icmp":{"type":'),
  code: bytes(',"code":'),
  icmpId: bytes(',"id":'),
  packets: bytes(',"packets":'),
  bytes: bytes(',"bytes":'),
  saturated: bytes(',"saturated":true'),
  mark: bytes(',"mark":'),
  zone: bytes(',"zone":'),
  timeout: bytes(',"timeout":'),
  start: bytes(',"start":'),
  stop: bytes(',"stop":'),
  sport: bytes(',"sport":'),
  dport: bytes(',"dport":'),
};

/** The record's start up to its id, by type; and from the family up to the protocol, by family. */
const TYPE_HEAD = new Map<string, Uint8Array>(
  ['dump', 'new', 'update', 'destroy'].map((t) => [t, bytes(`{"type":"${t}","id":`)]),
);
const FAMILY = new Map<string, Uint8Array>(['ipv4', 'ipv6'].map((f) => [f, bytes(`,"family":"${f}","proto":`)]));
const FAMILY_V4 = FAMILY.get('ipv4') as Uint8Array;
const FAMILY_V6 = FAMILY.get('ipv6') as Uint8Array;

/** `"tcp","protonum":6` by protocol number (a u8), made on first use. */
const PROTO: (Uint8Array | undefined)[] = new Array(256).fill(undefined);
function protoBytes(n: number): Uint8Array {
  let p = PROTO[n];
  if (p === undefined) {
    p = bytes(`${JSON.stringify(C.PROTO_NAMES[n] ?? String(n))},"protonum":${n}`);
    PROTO[n] = p;
  }
  return p;
}

/** `,"status":[…]` by status bits, as record() writes the decoder's list; bounded like the decoder's cache. */
const STATUS = new Map<number, Uint8Array>();
function statusBytes(bits: number): Uint8Array {
  let s = STATUS.get(bits);
  if (s === undefined) {
    s = bytes(`,"status":${JSON.stringify(statusList(bits))}`);
    if (STATUS.size < 4096) STATUS.set(bits, s);
  }
  return s;
}

export interface ByteSink {
  write(b: Uint8Array): unknown;
}

/** Room for everything in a record but its strings: keys, punctuation, up to 24 characters per number. */
const FIXED_ROOM = 1024;
/** The most bytes a string of `s.length` UTF-16 units can take in JSON: six per unit (\uXXXX), and its quotes. */
const textRoom = (s: string | undefined): number => (s === undefined ? 0 : 6 * s.length + 3);

export class ConntrackJsonWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private off = 0;
  /** Where message() gathers an entry's attributes before writing them in the record's order. */
  private readonly scan = new ScannedEntry();
  /** Messages message() wrote straight from their bytes (the others went through a record). */
  transcoded = 0;
  private readonly sync: boolean;

  constructor(private readonly out: ByteSink = process.stdout) {
    // A sync stream (file, /dev/null) is done with the bytes on return; others keep them, so they get the chunk.
    this.sync = out.constructor?.name === 'SyncWriteStream';
  }

  /**
   * Appends one record and a newline. Room for the whole record is made first (from its strings' lengths), so
   * the writing below runs over a local offset with no checks; the buffer goes out when the next record may
   * not fit.
   */
  record(r: ConntrackRecord): void {
    const delta = r.delta ? JSON.stringify(r.delta) : undefined;
    let need = FIXED_ROOM + textRoom(r.type) + textRoom(r.family) + textRoom(r.proto) + textRoom(r.state);
    need += textRoom(r.orig.src) + textRoom(r.orig.dst) + textRoom(r.reply.src) + textRoom(r.reply.dst);
    need += textRoom(r.helper) + textRoom(r.labels) + textRoom(r.netns) + textRoom(delta);
    const status = r.status;
    for (let i = 0; i < status.length; i++) need += textRoom(status[i]);
    if (need > this.buf.length - this.off) this.makeRoom(need);
    const b = this.buf;
    let o = this.off;
    const head = TYPE_HEAD.get(r.type);
    if (head) o = put(b, o, head);
    else o = put(b, str(b, put(b, o, K.type), r.type), K.id);
    o = num(b, o, r.id);
    const family = FAMILY.get(r.family);
    if (family) o = put(b, o, family);
    else o = put(b, str(b, put(b, o, K.family), r.family), K.proto);
    o = str(b, o, r.proto);
    o = num(b, put(b, o, K.protonum), r.protonum);
    o = end(b, put(b, o, K.orig), r.orig);
    o = end(b, put(b, o, K.reply), r.reply);
    if (r.state !== undefined) o = str(b, put(b, o, K.state), r.state);
    o = put(b, o, K.status);
    for (let i = 0; i < status.length; i++) {
      if (i > 0) b[o++] = 44;
      o = str(b, o, status[i]);
    }
    b[o++] = 93;
    if (r.mark !== undefined) o = num(b, put(b, o, K.mark), r.mark);
    if (r.zone !== undefined) o = num(b, put(b, o, K.zone), r.zone);
    if (r.timeout !== undefined) o = num(b, put(b, o, K.timeout), r.timeout);
    if (r.start !== undefined) o = num(b, put(b, o, K.start), r.start);
    if (r.stop !== undefined) o = num(b, put(b, o, K.stop), r.stop);
    if (r.helper !== undefined) o = str(b, put(b, o, K.helper), r.helper);
    if (r.labels !== undefined) o = str(b, put(b, o, K.labels), r.labels);
    if (delta !== undefined) o = utf8(b, put(b, o, K.delta), delta);
    if (r.resync) o = put(b, o, K.resync);
    if (r.netns !== undefined) o = str(b, put(b, o, K.netns), r.netns);
    o = num(b, put(b, o, K.ts), r.ts);
    this.off = put(b, o, K.close);
  }

  /**
   * Writes the ctnetlink message `b[start, end)` (nfgenmsg and attributes) as the line record() would write for
   * its decoded record, without making the record: the kernel's bytes go straight into the buffer. Returns 1,
   * or 0 for an entry outside `zone` (older kernels ignore the dump's zone filter). A message that does not
   * decode takes the record's way, which throws the decoder's DecodeError.
   */
  message(
    b: Buffer,
    start: number,
    end: number,
    msgType: number,
    flags: number,
    now: number,
    netns?: string,
    zone?: number,
  ): number {
    // The message type first, as the decoder checks it first.
    const head = TYPE_HEAD.get(ctKind(msgType, flags)) as Uint8Array;
    const m = this.scan;
    if (!m.read(b, start, end)) {
      const r = conntrackRecordAt(b, start, end, msgType, flags, now, netns);
      if (zone !== undefined && (r.zone ?? 0) !== zone) return 0;
      this.record(r);
      return 1;
    }
    if (zone !== undefined && (m.zone < 0 ? 0 : m.zone) !== zone) return 0;
    const state = m.state;
    const status = statusBytes(m.status);
    let need = FIXED_ROOM + status.length + textRoom(state) + textRoom(netns) + textRoom(m.helper) + textRoom(m.labels);
    need += m.orig.textRoom() + m.reply.textRoom();
    if (need > this.buf.length - this.off) this.makeRoom(need);
    const buf = this.buf;
    let o = put(buf, this.off, head);
    o = num(buf, o, m.id);
    o = put(buf, o, b[start] === 10 ? FAMILY_V6 : FAMILY_V4);
    o = put(buf, o, protoBytes(m.protonum));
    o = scannedEnd(buf, put(buf, o, K.orig), m.orig, b);
    o = scannedEnd(buf, put(buf, o, K.reply), m.reply, b);
    if (state !== undefined) o = str(buf, put(buf, o, K.state), state);
    o = put(buf, o, status);
    if (m.has & HAS_MARK) o = num(buf, put(buf, o, K.mark), m.mark);
    if (m.zone >= 0) o = num(buf, put(buf, o, K.zone), m.zone);
    if (m.has & HAS_TIMEOUT) o = num(buf, put(buf, o, K.timeout), m.timeout);
    if (m.tsStart >= 0) o = num(buf, put(buf, o, K.start), m.tsStart);
    if (m.tsStop >= 0) o = num(buf, put(buf, o, K.stop), m.tsStop);
    if (m.helper !== undefined) o = str(buf, put(buf, o, K.helper), m.helper);
    if (m.labels !== undefined) o = str(buf, put(buf, o, K.labels), m.labels);
    if (netns !== undefined) o = str(buf, put(buf, o, K.netns), netns);
    o = num(buf, put(buf, o, K.ts), m.tsEvent >= 0 ? m.tsEvent : now);
    this.off = put(buf, o, K.close);
    this.transcoded++;
    return 1;
  }

  flush(): void {
    if (this.off === 0) return;
    const bytes = this.buf.subarray(0, this.off);
    // An async stream keeps the bytes until written: it gets this chunk, and the writer a new one. A buffer
    // grown for one huge record goes back to the usual size.
    if (!this.sync || this.buf.length > CHUNK) this.buf = Buffer.allocUnsafe(CHUNK);
    this.out.write(bytes);
    this.off = 0;
  }

  /** Out with what is there, then a bigger buffer if one record needs more than a chunk. */
  private makeRoom(need: number): void {
    this.flush();
    if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need);
  }
}

// The pieces below write at offset `o` of a buffer with room made, and return the offset after what they wrote.

/** Constant bytes (a key and its punctuation). */
function put(b: Buffer, o: number, k: Uint8Array): number {
  for (let i = 0; i < k.length; i++) b[o++] = k[i];
  return o;
}

/** A JSON string: plain printable ASCII copied as it is checked; anything else through JSON.stringify. */
function str(b: Buffer, o: number, s: string): number {
  const start = o;
  b[o++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) return utf8(b, start, JSON.stringify(s));
    b[o++] = c;
  }
  b[o++] = 34;
  return o;
}

function utf8(b: Buffer, o: number, s: string): number {
  return o + b.write(s, o, 'utf8');
}

function end(b: Buffer, o: number, e: ConntrackEnd): number {
  o = str(b, put(b, o, K.srcKey), e.src);
  o = str(b, put(b, o, K.dstKey), e.dst);
  if (e.icmp) {
    o = num(b, put(b, o, K.icmp), e.icmp.type);
    o = num(b, put(b, o, K.code), e.icmp.code);
    o = num(b, put(b, o, K.icmpId), e.icmp.id);
    b[o++] = 125;
  }
  if (e.sport !== undefined) o = num(b, put(b, o, K.sport), e.sport);
  if (e.dport !== undefined) o = num(b, put(b, o, K.dport), e.dport);
  if (e.packets !== undefined) {
    o = num(b, put(b, o, K.packets), e.packets);
    o = num(b, put(b, o, K.bytes), e.bytes ?? 0);
  }
  if (e.saturated) o = put(b, o, K.saturated);
  if (e.zone !== undefined) o = num(b, put(b, o, K.zone), e.zone);
  b[o++] = 125;
  return o;
}

/** Integers in the safe range digit by digit; anything else as JavaScript prints it (as `${n}` does). */
function num(b: Buffer, o: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    const s = String(n);
    for (let i = 0; i < s.length; i++) b[o++] = s.charCodeAt(i);
    return o;
  }
  if (n < 1e9) return digits(b, o, n, width(n));
  // Ids, timestamps: split so the digit loop stays in small-integer arithmetic (hi < 2^53 / 1e9 < 1e9).
  const hi = Math.floor(n / 1e9);
  return digits(b, digits(b, o, hi, width(hi)), n - hi * 1e9, 9);
}

/** How many digits `n` (0 ≤ n < 1e9) has. */
function width(n: number): number {
  let count = 1;
  for (let t = 10; t <= n; t *= 10) count++;
  return count;
}

/** `x` (< 1e9) as exactly `count` digits, zero-padded. */
function digits(b: Buffer, start: number, x: number, count: number): number {
  const end = start + count;
  let o = end;
  // Below 2^31 as an int32: the divisions become multiplications.
  let v = x | 0;
  for (; o - start >= 2; o -= 2) {
    const q = (v / 100) | 0;
    const p = (v - q * 100) << 1;
    b[o - 1] = PAIRS[p + 1];
    b[o - 2] = PAIRS[p];
    v = q;
  }
  if (o > start) b[--o] = 48 + v - ((v / 10) | 0) * 10;
  return end;
}

// message(): an entry's attributes gathered into numbers and offsets, with the decoder's rules (the last of a
// repeated attribute wins; a repeated tuple or proto nest replaces its predecessor whole; every length the
// decoder checks is checked), then written in the record's order.

const OP = 'ctnetlink entry';
const HAS_MARK = 1;
const HAS_TIMEOUT = 2;

/** One end of an entry: its tuple and its counters. -1 is "absent" for the numbers that may be. */
class ScannedEnd {
  /** The address attributes' value offsets in the message (IPv4: written from the bytes), or -1. */
  src = -1;
  dst = -1;
  /** Addresses other than IPv4 (IPv6), already text; null when `src`/`dst` is an offset or absent. */
  srcText: string | null = null;
  dstText: string | null = null;
  sport = -1;
  dport = -1;
  icmp = false;
  icmpType = 0;
  icmpCode = 0;
  icmpId = 0;
  zone = -1;
  counted = false;
  packets = 0;
  bytes = 0;
  saturated = false;

  /** The room its addresses need in a line: IPv4 ones take at most 17 bytes. */
  textRoom(): number {
    return (
      (this.srcText === null ? 17 : textRoom(this.srcText)) + (this.dstText === null ? 17 : textRoom(this.dstText))
    );
  }

  resetTuple(): void {
    this.src = this.dst = -1;
    this.srcText = this.dstText = null;
    this.sport = this.dport = -1;
    this.icmp = false;
    this.zone = -1;
  }

  resetCounters(): void {
    this.counted = false;
    this.saturated = false;
  }
}

class ScannedEntry {
  readonly orig = new ScannedEnd();
  readonly reply = new ScannedEnd();
  has = 0;
  id = 0;
  protonum = 0;
  status = 0;
  mark = 0;
  timeout = 0;
  zone = -1;
  tsStart = -1;
  tsStop = -1;
  tsEvent = -1;
  state: string | undefined;
  helper: string | undefined;
  labels: string | undefined;
  private readonly master = new ScannedEnd();

  /** Gathers the attributes of `b[start, end)`; false when the message needs the decoder (see message()). */
  read(b: Buffer, start: number, end: number): boolean {
    if (end - start < 4) return false;
    const orig = this.orig;
    const reply = this.reply;
    orig.resetTuple();
    orig.resetCounters();
    reply.resetTuple();
    reply.resetCounters();
    this.has = this.id = this.protonum = this.status = 0;
    this.zone = this.tsStart = this.tsStop = this.tsEvent = -1;
    this.state = this.helper = this.labels = undefined;
    try {
      for (let o = start + 4; o < end; o = attrNext(b, o)) {
        const vEnd = attrEnd(b, o, end, OP);
        switch (attrType(b, o)) {
          case C.CTA_TUPLE_ORIG:
            this.protonum = scanTuple(b, o + 4, vEnd, orig);
            break;
          case C.CTA_TUPLE_REPLY:
            scanTuple(b, o + 4, vEnd, reply);
            break;
          case C.CTA_STATUS:
            this.status = u32beAt(b, attrNeed(o, vEnd, 4, OP));
            break;
          case C.CTA_PROTOINFO:
            this.state = tcpState(b, o + 4, vEnd);
            break;
          case C.CTA_TIMEOUT:
            this.timeout = u32beAt(b, attrNeed(o, vEnd, 4, OP));
            this.has |= HAS_TIMEOUT;
            break;
          case C.CTA_MARK:
            this.mark = u32beAt(b, attrNeed(o, vEnd, 4, OP));
            this.has |= HAS_MARK;
            break;
          case C.CTA_COUNTERS_ORIG:
            scanCounters(b, o + 4, vEnd, orig);
            break;
          case C.CTA_COUNTERS_REPLY:
            scanCounters(b, o + 4, vEnd, reply);
            break;
          case C.CTA_ID:
            this.id = u32beAt(b, attrNeed(o, vEnd, 4, OP));
            break;
          case C.CTA_USE:
          case C.CTA_SECMARK:
            attrNeed(o, vEnd, 4, OP);
            break;
          case C.CTA_ZONE:
            this.zone = u16beAt(b, attrNeed(o, vEnd, 2, OP));
            break;
          case C.CTA_TIMESTAMP:
            this.tsStart = this.tsStop = -1;
            for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
              const pEnd = attrEnd(b, p, vEnd, OP);
              const pt = attrType(b, p);
              if (pt === C.CTA_TIMESTAMP_START) this.tsStart = nsToMs(b, attrNeed(p, pEnd, 8, OP));
              else if (pt === C.CTA_TIMESTAMP_STOP) this.tsStop = nsToMs(b, attrNeed(p, pEnd, 8, OP));
            }
            break;
          case C.CTA_TUPLE_MASTER:
            // Not in the line, but checked as the decoder does.
            scanTuple(b, o + 4, vEnd, this.master);
            break;
          case C.CTA_TIMESTAMP_EVENT:
            this.tsEvent = nsToMs(b, attrNeed(o, vEnd, 8, OP));
            break;
          case C.CTA_HELP:
            this.helper = undefined;
            for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
              const pEnd = attrEnd(b, p, vEnd, OP);
              if (attrType(b, p) === C.CTA_HELP_NAME) this.helper = cStringAt(b, p + 4, pEnd);
            }
            break;
          case C.CTA_LABELS:
            this.labels = b.toString('hex', o + 4, vEnd);
            break;
        }
      }
    } catch {
      // The decoder says what is wrong, with the offsets its errors count from.
      return false;
    }
    return true;
  }
}

/** A CTA_TUPLE_* value into `e`, as the decoder's tuple() reads it; returns the protocol number. */
function scanTuple(b: Buffer, start: number, end: number, e: ScannedEnd): number {
  e.resetTuple();
  let proto = 0;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    const t = attrType(b, o);
    if (t === C.CTA_TUPLE_IP) {
      e.src = e.dst = -1;
      e.srcText = e.dstText = null;
      for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
        const pEnd = attrEnd(b, p, vEnd, OP);
        const pt = attrType(b, p);
        const len = pEnd - p - 4;
        if (pt === C.CTA_IP_V4_SRC || pt === C.CTA_IP_V6_SRC) {
          e.src = p + 4;
          e.srcText = len === 4 ? null : ipAt(b, p + 4, len, p, OP);
        } else if (pt === C.CTA_IP_V4_DST || pt === C.CTA_IP_V6_DST) {
          e.dst = p + 4;
          e.dstText = len === 4 ? null : ipAt(b, p + 4, len, p, OP);
        }
      }
    } else if (t === C.CTA_TUPLE_PROTO) {
      proto = e.icmpType = e.icmpCode = e.icmpId = 0;
      e.icmp = false;
      e.sport = e.dport = -1;
      for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
        const pEnd = attrEnd(b, p, vEnd, OP);
        switch (attrType(b, p)) {
          case C.CTA_PROTO_NUM:
            proto = b[attrNeed(p, pEnd, 1, OP)];
            break;
          case C.CTA_PROTO_SRC_PORT:
            e.sport = u16beAt(b, attrNeed(p, pEnd, 2, OP));
            break;
          case C.CTA_PROTO_DST_PORT:
            e.dport = u16beAt(b, attrNeed(p, pEnd, 2, OP));
            break;
          case C.CTA_PROTO_ICMP_ID:
          case C.CTA_PROTO_ICMPV6_ID:
            e.icmpId = u16beAt(b, attrNeed(p, pEnd, 2, OP));
            e.icmp = true;
            break;
          case C.CTA_PROTO_ICMP_TYPE:
          case C.CTA_PROTO_ICMPV6_TYPE:
            e.icmpType = b[attrNeed(p, pEnd, 1, OP)];
            e.icmp = true;
            break;
          case C.CTA_PROTO_ICMP_CODE:
          case C.CTA_PROTO_ICMPV6_CODE:
            e.icmpCode = b[attrNeed(p, pEnd, 1, OP)];
            e.icmp = true;
            break;
        }
      }
    } else if (t === C.CTA_TUPLE_ZONE) {
      e.zone = u16beAt(b, attrNeed(o, vEnd, 2, OP));
    }
  }
  if (e.icmp) e.sport = e.dport = -1;
  return proto;
}

function scanCounters(b: Buffer, start: number, end: number, e: ScannedEnd): void {
  let packets = 0;
  let bytes = 0;
  let satP = false;
  let satB = false;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    const t = attrType(b, o);
    if (t === C.CTA_COUNTERS_PACKETS) {
      const v = attrNeed(o, vEnd, 8, OP);
      packets = u64Sat(b, v);
      satP = u32beAt(b, v) >= SAFE_HI;
    } else if (t === C.CTA_COUNTERS_BYTES) {
      const v = attrNeed(o, vEnd, 8, OP);
      bytes = u64Sat(b, v);
      satB = u32beAt(b, v) >= SAFE_HI;
    }
  }
  e.counted = true;
  e.packets = packets;
  e.bytes = bytes;
  e.saturated = satP || satB;
}

/** An IPv4 address from the message's bytes, in quotes; other addresses from their text. */
function address(out: Buffer, o: number, b: Buffer, at: number, text: string | null): number {
  if (text !== null) return str(out, o, text);
  out[o++] = 34;
  if (at < 0) {
    out[o++] = 34;
    return o;
  }
  for (let k = 0; k < 4; k++) {
    if (k > 0) out[o++] = 46;
    const v = b[at + k];
    o = digits(out, o, v, v < 10 ? 1 : v < 100 ? 2 : 3);
  }
  out[o++] = 34;
  return o;
}

/** A scanned end as end() writes the decoded one. */
function scannedEnd(out: Buffer, o: number, e: ScannedEnd, b: Buffer): number {
  o = address(out, put(out, o, K.srcKey), b, e.src, e.srcText);
  o = address(out, put(out, o, K.dstKey), b, e.dst, e.dstText);
  if (e.icmp) {
    o = num(out, put(out, o, K.icmp), e.icmpType);
    o = num(out, put(out, o, K.code), e.icmpCode);
    o = num(out, put(out, o, K.icmpId), e.icmpId);
    out[o++] = 125;
  }
  if (e.sport >= 0) o = num(out, put(out, o, K.sport), e.sport);
  if (e.dport >= 0) o = num(out, put(out, o, K.dport), e.dport);
  if (e.counted) {
    o = num(out, put(out, o, K.packets), e.packets);
    o = num(out, put(out, o, K.bytes), e.bytes);
  }
  if (e.saturated) o = put(out, o, K.saturated);
  if (e.zone >= 0) o = num(out, put(out, o, K.zone), e.zone);
  out[o++] = 125;
  return o;
}
