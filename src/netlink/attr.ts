/**
 * Netlink attribute (struct nlattr) codec. The attribute header is host order
 * (little-endian); netfilter attribute *values* are big-endian, so the
 * readers and the writer here say `be` in their names and call sites never
 * swap bytes themselves.
 */
import { DecodeError } from '../errors.js';
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK } from './enums.js';
import { align4 } from './nlmsg.js';

/** An attribute the decoder does not interpret, kept so nothing is silently dropped. */
export interface RawAttr {
  type: number;
  nested: boolean;
  value: Buffer;
}

/**
 * Checks the attribute at `o` fits before `end` and returns the offset where
 * its value ends. Decoders walk attributes with this, allocation-free.
 */
export function attrValueEnd(buf: Buffer, o: number, end: number, op: string): number {
  if (end - o < NLA_HDRLEN) throw new DecodeError('truncated attribute header', o, op);
  const len = buf.readUInt16LE(o);
  if (len < NLA_HDRLEN || o + len > end) throw new DecodeError(`attribute length ${len} overruns its container`, o, op);
  return o + len;
}

export const attrType = (buf: Buffer, o: number): number => buf.readUInt16LE(o + 2) & NLA_TYPE_MASK;
export const attrNested = (buf: Buffer, o: number): boolean => (buf.readUInt16LE(o + 2) & NLA_F_NESTED) !== 0;
export const nextAttr = (buf: Buffer, o: number): number => o + align4(buf.readUInt16LE(o));

/** Decodes one level of attributes into RawAttr views (no copies). */
export function decodeAttrs(buf: Buffer, start = 0, end = buf.length, op = 'nlattr'): RawAttr[] {
  const out: RawAttr[] = [];
  for (let o = start; o < end; o = nextAttr(buf, o)) {
    const vEnd = attrValueEnd(buf, o, end, op);
    out.push({ type: attrType(buf, o), nested: attrNested(buf, o), value: buf.subarray(o + NLA_HDRLEN, vEnd) });
  }
  return out;
}

function need(o: number, vEnd: number, size: number, op: string): void {
  if (vEnd - o - NLA_HDRLEN < size) throw new DecodeError(`attribute needs ${size} bytes`, o, op);
}

// Readers take the offset of the attribute header and the end of its value.
export function beU8(buf: Buffer, o: number, vEnd: number, op: string): number {
  need(o, vEnd, 1, op);
  return buf[o + NLA_HDRLEN];
}
export function beU16(buf: Buffer, o: number, vEnd: number, op: string): number {
  need(o, vEnd, 2, op);
  return buf.readUInt16BE(o + NLA_HDRLEN);
}
export function beU32(buf: Buffer, o: number, vEnd: number, op: string): number {
  need(o, vEnd, 4, op);
  return buf.readUInt32BE(o + NLA_HDRLEN);
}
/** u64 as a number: exact below 2^53, which packet and byte counters stay under in practice. */
export function beU64(buf: Buffer, o: number, vEnd: number, op: string): number {
  need(o, vEnd, 8, op);
  return buf.readUInt32BE(o + NLA_HDRLEN) * 0x1_0000_0000 + buf.readUInt32BE(o + NLA_HDRLEN + 4);
}
export function beU64Big(buf: Buffer, o: number, vEnd: number, op: string): bigint {
  need(o, vEnd, 8, op);
  return buf.readBigUInt64BE(o + NLA_HDRLEN);
}
export function cString(buf: Buffer, o: number, vEnd: number): string {
  let e = vEnd;
  while (e > o + NLA_HDRLEN && buf[e - 1] === 0) e--;
  return buf.toString('utf8', o + NLA_HDRLEN, e);
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
