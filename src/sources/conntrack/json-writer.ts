/**
 * NDJSON for conntrack records written straight into a large byte buffer:
 * no string per record (conntrackToJson builds one, then it is copied again
 * as UTF-8). Its output is byte for byte conntrackToJson's plus "\n" (a test
 * holds them equal). ASCII goes in byte by byte; a string that needs escaping
 * or is not ASCII goes through JSON.stringify and a UTF-8 write. message()
 * writes a kernel message the same way without making its record (a dump
 * printed as NDJSON): the attribute walk's numbers and offsets go straight
 * into the buffer.
 */
import { ctKind } from '../../netlink/conntrack/messages.js';
import type { ConntrackEnd, ConntrackRecord } from './record.js';
import { HAS_MARK, HAS_TIMEOUT, protoName, type ScannedEnd, ScannedEntry, statusList } from './scan.js';

/** Bytes the writer gathers before it writes them out. */
const CHUNK = 1 << 20;
/**
 * The first chunk: small, so the first lines go out at once, and a full chunk (the writer's rare path) comes
 * while the JIT is still gathering feedback: met first in optimized code, it would cost a deoptimization and a
 * second compile of the writer. Each next chunk is twice as big, up to CHUNK.
 */
const FIRST_CHUNK = 1 << 14;

/** The writer's chunk sizes (for tests): the first, and the largest (a record longer than it gets its own). */
export const WRITER_CHUNKS = { first: FIRST_CHUNK, max: CHUNK } as const;

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
    p = bytes(`${JSON.stringify(protoName(n))},"protonum":${n}`);
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
  private chunk = FIRST_CHUNK;
  private buf = Buffer.allocUnsafe(FIRST_CHUNK);
  private off = 0;
  /** Where message() gathers an entry's attributes before writing them in the record's order. */
  private readonly scan = new ScannedEntry();
  /** Lines message() wrote (straight from the kernel's bytes). */
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
   * decode throws the DecodeError the decoder would.
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
    // As the decoder: the message type first, then the payload (its errors, the decoder's).
    const head = TYPE_HEAD.get(ctKind(msgType, flags)) as Uint8Array;
    const m = this.scan;
    m.readPayload(b, start, end);
    if (zone !== undefined && (m.zone < 0 ? 0 : m.zone) !== zone) return 0;
    const state = m.state;
    const status = statusBytes(m.status);
    let need = FIXED_ROOM + status.length + textRoom(state) + textRoom(netns) + textRoom(m.helper) + textRoom(m.labels);
    need += addressRoom(m.orig) + addressRoom(m.reply);
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
    // grown for one huge record goes back to the chunk size.
    if (this.chunk < CHUNK) this.chunk *= 2;
    if (!this.sync || this.buf.length !== this.chunk) this.buf = Buffer.allocUnsafe(this.chunk);
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

/** The room a scanned end's addresses need in a line: an IPv4 one takes at most 17 bytes. */
const addressRoom = (e: ScannedEnd): number =>
  (e.srcText === null ? 17 : textRoom(e.srcText)) + (e.dstText === null ? 17 : textRoom(e.dstText));

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
