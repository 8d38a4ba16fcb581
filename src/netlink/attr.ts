/**
 * Netlink attribute (struct nlattr) codec: AttrReader walks an attribute
 * list, AttrWriter builds one (the pair of mdlayher/netlink's
 * AttributeDecoder and AttributeEncoder). The attribute header is host
 * order (little-endian); netfilter attribute *values* are big-endian, so the
 * accessors say `be` or not in their names and call sites never swap bytes.
 */
import { DecodeError } from '../errors.js';
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN } from './enums.js';
import { formatIPv4Cached, formatIPv6 } from './ip.js';

/**
 * Rounds up to a multiple of 4. Plain arithmetic, not `(n + 3) & ~3`: the
 * bitwise form wraps negative for n ≥ 2^31 - 3 (a lying 32-bit length).
 */
export const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);

/** An attribute the decoder does not interpret, kept so nothing is silently dropped. */
export interface RawAttr {
  type: number;
  nested: boolean;
  value: Buffer;
}

const EMPTY = Buffer.alloc(0);

/*
 * The attribute walk's rules, as functions over (buffer, offset, end) that
 * allocate nothing: AttrReader is built on them, and the conntrack hot path
 * (src/sources/conntrack/decode.ts) calls them directly, keeping its offsets
 * in locals. `o` is always the offset of an attribute header. They spell
 * NLA_HDRLEN (4), NLA_TYPE_MASK (0x3fff) and NLA_F_NESTED (0x8000) as
 * literals: an imported or module-level constant costs a load and a TDZ
 * check per use, which made the conntrack fast path 10-15% slower.
 */

/**
 * Checks the attribute at `o` fits before `end` and returns the offset where
 * its value ends; a DecodeError (naming `op`) otherwise.
 */
export function attrEnd(b: Buffer, o: number, end: number, op: string): number {
  if (end - o < 4) return badAttr(b, o, end, op);
  const vEnd = o + (b[o] | (b[o + 1] << 8));
  if (vEnd - o < 4 || vEnd > end) return badAttr(b, o, end, op);
  return vEnd;
}
/** The cold half of attrEnd, apart so that attrEnd stays small enough to inline. */
function badAttr(b: Buffer, o: number, end: number, op: string): never {
  const len = end - o >= 4 ? b[o] | (b[o + 1] << 8) : 0;
  throw new DecodeError(
    len < 4 ? 'truncated attribute header' : `attribute length ${len} overruns its container`,
    o,
    op,
  );
}
/** Offset of the attribute after the one at `o` (which attrEnd has checked): its length padded to 4. */
export const attrNext = (b: Buffer, o: number): number => o + (((b[o] | (b[o + 1] << 8)) + 3) & ~3);
/** Type of the attribute at `o`, without the NESTED and NET_BYTEORDER flags. */
export const attrType = (b: Buffer, o: number): number => (b[o + 2] | (b[o + 3] << 8)) & 0x3fff;
/** Whether the attribute at `o` is flagged 0x8000. */
export const attrIsNested = (b: Buffer, o: number): boolean => ((b[o + 3] << 8) & 0x8000) !== 0;
/** Checks the value of the attribute at `o` (ending at `vEnd`) holds `size` bytes; returns the value's offset. */
export function attrNeed(o: number, vEnd: number, size: number, op: string, what?: string): number {
  if (vEnd - o - 4 < size) return shortAttr(o, vEnd, size, op, what);
  return o + 4;
}
function shortAttr(o: number, vEnd: number, size: number, op: string, what = 'attribute'): never {
  const len = vEnd - o - 4;
  throw new DecodeError(`${what} needs ${size} byte${size === 1 ? '' : 's'}, has ${len}`, o, op);
}
/** Big-endian u32 at `o` from bytes (callers have checked the bounds). */
export const u32beAt = (b: Buffer, o: number): number =>
  ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
/** Big-endian u16 at `o` from bytes (callers have checked the bounds). */
export const u16beAt = (b: Buffer, o: number): number => (b[o] << 8) | b[o + 1];
/** The UTF-8 string in `b[v, vEnd)`, trailing NULs dropped (a NUL-terminated or unterminated C string). */
export function cStringAt(b: Buffer, v: number, vEnd: number): string {
  let e = vEnd;
  while (e > v && b[e - 1] === 0) e--;
  return b.toString('utf8', v, e);
}
/** An IPv4 (4 bytes) or IPv6 (16 bytes) address at `v` as text; any other length is a DecodeError at `o`. */
export function ipAt(b: Buffer, v: number, len: number, o: number, op: string, what = 'address'): string {
  if (len === 4) return formatIPv4Cached(b, v);
  if (len === 16) return formatIPv6(b, v);
  throw new DecodeError(`${what} of ${len} bytes`, o, op);
}

/**
 * A cursor over one level of attributes in `buf[start, end)`:
 *
 * ```ts
 * const r = new AttrReader('nflog packet').reset(payload, NFGENMSG_LEN);
 * while (r.next()) if (r.type() === NFULA_MARK) mark = r.u32be();
 * ```
 *
 * `next()` checks each header against its container; every accessor checks
 * the value is long enough. Malformed input throws a DecodeError (with the
 * attribute's offset and the reader's `op`), never anything else, and
 * nothing reads outside `[start, end)`. A reader allocates nothing while it
 * walks: hot paths keep one per nesting depth and `reset` it per message.
 */
export class AttrReader {
  private buf: Buffer = EMPTY;
  private end = 0;
  /** Header offset of the current attribute; before the first, the start. */
  private at = 0;
  /** End of the current attribute's value; before the first, the start (so the next one is at `at`). */
  private vEnd = 0;

  /** `op` names the structure in errors ("ctnetlink entry"). */
  constructor(readonly op: string) {}

  /** Points the reader at the attributes in `buf[start, end)`, before the first one. */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.end = end;
    this.at = start;
    this.vEnd = start;
    return this;
  }

  /**
   * Moves to the next attribute; false at the end of the list. Throws
   * DecodeError on a bad header (and again if called after that).
   */
  next(): boolean {
    // The next header follows the current one's padded length (0 before the first).
    const o = this.at + ((this.vEnd - this.at + 3) & ~3);
    if (o >= this.end) return false;
    this.vEnd = attrEnd(this.buf, o, this.end, this.op);
    this.at = o;
    return true;
  }

  /** The current attribute's type (after next() returned true), without the NESTED and NET_BYTEORDER flags. */
  type(): number {
    return attrType(this.buf, this.at);
  }
  /** Whether the sender flagged the attribute NLA_F_NESTED. */
  isNested(): boolean {
    return attrIsNested(this.buf, this.at);
  }
  /** Offset of the attribute's header in the buffer (what errors report). */
  get offset(): number {
    return this.at;
  }
  /** Offset of the value's first byte. */
  get valueStart(): number {
    return this.at + NLA_HDRLEN;
  }
  /** Offset just after the value (padding excluded). */
  get valueEnd(): number {
    return this.vEnd;
  }
  /** Length of the value in bytes. */
  len(): number {
    return this.vEnd - this.at - NLA_HDRLEN;
  }
  /** The buffer being read, for struct values read at `need()`'s offset. */
  get buffer(): Buffer {
    return this.buf;
  }

  /** A DecodeError at this attribute. */
  error(message: string): DecodeError {
    return new DecodeError(message, this.at, this.op);
  }
  /** Checks the value holds at least `size` bytes and returns its offset. */
  need(size: number, what?: string): number {
    return attrNeed(this.at, this.vEnd, size, this.op, what);
  }

  /** Points `into` at this attribute's value (a nested list) and returns it. Without `into`, a new reader. */
  nested(into: AttrReader = new AttrReader(this.op)): AttrReader {
    return into.reset(this.buf, this.at + NLA_HDRLEN, this.vEnd);
  }

  u8(): number {
    return this.buf[this.need(1)];
  }
  /** Host order (rtnetlink, sock_diag). */
  u16(): number {
    const v = this.need(2);
    return this.buf[v] | (this.buf[v + 1] << 8);
  }
  /** Host order. */
  u32(): number {
    return this.buf.readUInt32LE(this.need(4));
  }
  /** Host order, exact (bigint). */
  u64(): bigint {
    return this.buf.readBigUInt64LE(this.need(8));
  }
  /** Network order (netfilter). */
  u16be(): number {
    return u16beAt(this.buf, this.need(2));
  }
  /** Network order. */
  u32be(): number {
    return u32beAt(this.buf, this.need(4));
  }
  /** Network order, as a number: exact below 2^53, which packet and byte counters stay under in practice. */
  u64be(): number {
    const v = this.need(8);
    return u32beAt(this.buf, v) * 0x1_0000_0000 + u32beAt(this.buf, v + 4);
  }
  /** Network order, exact (bigint). */
  u64beBig(): bigint {
    return this.buf.readBigUInt64BE(this.need(8));
  }
  /** The value as a view into the buffer (no copy: valid while the buffer is). */
  view(): Buffer {
    return this.buf.subarray(this.at + NLA_HDRLEN, this.vEnd);
  }
  /** The value copied out of the buffer. */
  bytes(): Buffer {
    return Buffer.from(this.view());
  }
  /** A NUL-terminated (or unterminated) UTF-8 string; trailing NULs dropped. */
  string(): string {
    return cStringAt(this.buf, this.at + NLA_HDRLEN, this.vEnd);
  }
  /** The value in lowercase hex. */
  hex(): string {
    return this.buf.toString('hex', this.at + NLA_HDRLEN, this.vEnd);
  }
  /** An IPv4 (4 bytes) or IPv6 (16 bytes) address as text; any other length is a DecodeError. */
  ip(what?: string): string {
    return ipAt(this.buf, this.at + NLA_HDRLEN, this.len(), this.at, this.op, what);
  }
  /** The attribute as a RawAttr, its value a view (`copy` for a copy). */
  raw(copy = false): RawAttr {
    return { type: this.type(), nested: this.isNested(), value: copy ? this.bytes() : this.view() };
  }
}

/** Decodes one level of attributes into RawAttr views (no copies). */
export function decodeAttrs(buf: Buffer, start = 0, end = buf.length, op = 'nlattr'): RawAttr[] {
  const out: RawAttr[] = [];
  const r = new AttrReader(op).reset(buf, start, end);
  while (r.next()) out.push(r.raw());
  return out;
}

/** Builds attribute lists; values written big-endian (netfilter's order). */
export class AttrWriter {
  private readonly parts: Buffer[] = [];

  private put(type: number, value: Buffer, flags = 0): this {
    const hdr = Buffer.alloc(NLA_HDRLEN);
    hdr.writeUInt16LE(NLA_HDRLEN + value.length, 0);
    hdr.writeUInt16LE(type | flags, 2);
    this.parts.push(hdr, value);
    const pad = align4(value.length) - value.length;
    if (pad) this.parts.push(Buffer.alloc(pad));
    return this;
  }

  u8(type: number, v: number): this {
    return this.put(type, Buffer.from([v & 0xff]));
  }
  u16be(type: number, v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.put(type, b);
  }
  u32be(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.put(type, b);
  }
  u64be(type: number, v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    return this.put(type, b);
  }
  /** Host-order u32 (rtnetlink, sock_diag): most non-netfilter families. */
  u32le(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.put(type, b);
  }
  bytes(type: number, v: Buffer, opts: { nested?: boolean; netByteOrder?: boolean } = {}): this {
    return this.put(type, v, (opts.nested ? NLA_F_NESTED : 0) | (opts.netByteOrder ? NLA_F_NET_BYTEORDER : 0));
  }
  string(type: number, v: string): this {
    return this.put(type, Buffer.from(`${v}\0`, 'utf8'));
  }
  nest(type: number, fill: (w: AttrWriter) => void): this {
    const inner = new AttrWriter();
    fill(inner);
    return this.put(type, inner.toBuffer(), NLA_F_NESTED);
  }
  raw(a: RawAttr): this {
    return this.put(a.type, a.value, a.nested ? NLA_F_NESTED : 0);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}
