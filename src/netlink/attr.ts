/**
 * Netlink attribute (struct nlattr) codec: AttrReader walks an attribute
 * list, AttrWriter builds one (the pair of mdlayher/netlink's
 * AttributeDecoder and AttributeEncoder). The attribute header is host
 * order (little-endian); netfilter attribute *values* are big-endian, so the
 * accessors say `be` or not in their names and call sites never swap bytes.
 */
import { DecodeError } from '../errors.js';
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK } from './enums.js';
import { formatIPv6 } from './ip.js';

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
  private at = 0;
  private vEnd = 0;
  private following = 0;

  /** `op` names the structure in errors ("ctnetlink entry"). */
  constructor(readonly op: string) {}

  /** Points the reader at the attributes in `buf[start, end)`, before the first one. */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.end = end;
    this.at = start;
    this.vEnd = start + NLA_HDRLEN;
    this.following = start;
    return this;
  }

  /** Moves to the next attribute; false at the end of the list. Throws DecodeError on a bad header. */
  next(): boolean {
    const o = this.following;
    const end = this.end;
    if (o >= end) return false;
    const b = this.buf;
    const len = end - o >= NLA_HDRLEN ? b[o] | (b[o + 1] << 8) : 0;
    if (len < NLA_HDRLEN || o + len > end) {
      this.following = end; // a caller that swallows the error gets no further attributes
      throw new DecodeError(
        len < NLA_HDRLEN ? 'truncated attribute header' : `attribute length ${len} overruns its container`,
        o,
        this.op,
      );
    }
    this.at = o;
    this.vEnd = o + len;
    this.following = o + ((len + 3) & ~3);
    return true;
  }

  /** The current attribute's type (after next() returned true), without the NESTED and NET_BYTEORDER flags. */
  type(): number {
    const b = this.buf;
    return (b[this.at + 2] | (b[this.at + 3] << 8)) & NLA_TYPE_MASK;
  }
  /** Whether the sender flagged the attribute NLA_F_NESTED. */
  isNested(): boolean {
    return ((this.buf[this.at + 3] << 8) & NLA_F_NESTED) !== 0;
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
  need(size: number, what = 'attribute'): number {
    const len = this.vEnd - this.at - NLA_HDRLEN;
    if (len < size) throw this.error(`${what} needs ${size} byte${size === 1 ? '' : 's'}, has ${len}`);
    return this.at + NLA_HDRLEN;
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
    const v = this.need(2);
    return (this.buf[v] << 8) | this.buf[v + 1];
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
    const b = this.buf;
    const v = this.at + NLA_HDRLEN;
    let e = this.vEnd;
    while (e > v && b[e - 1] === 0) e--;
    return b.toString('utf8', v, e);
  }
  /** The value in lowercase hex. */
  hex(): string {
    return this.buf.toString('hex', this.at + NLA_HDRLEN, this.vEnd);
  }
  /** An IPv4 (4 bytes) or IPv6 (16 bytes) address as text; any other length is a DecodeError. */
  ip(what = 'address'): string {
    const b = this.buf;
    const v = this.at + NLA_HDRLEN;
    const len = this.vEnd - v;
    if (len === 4) return `${b[v]}.${b[v + 1]}.${b[v + 2]}.${b[v + 3]}`;
    if (len === 16) return formatIPv6(b, v);
    throw this.error(`${what} of ${len} bytes`);
  }
  /** The attribute as a RawAttr, its value a view (`copy` for a copy). */
  raw(copy = false): RawAttr {
    return { type: this.type(), nested: this.isNested(), value: copy ? this.bytes() : this.view() };
  }
}

/** Big-endian u32 at `o` from bytes (callers have checked the bounds). */
export const u32beAt = (b: Buffer, o: number): number =>
  ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);

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
