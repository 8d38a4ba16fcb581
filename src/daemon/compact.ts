/**
 * The compact records frame: a batch of records in binary, for clients that
 * ask for it in their hello (`records: 'compact'`); the others get JSON.
 * Decoding it gives what JSON.parse(JSON.stringify(records)) gives, so the
 * two forms are interchangeable; it is smaller (each distinct string and
 * each object shape is sent once per frame, numbers as varints) and cheaper
 * to read (a record's repeated strings are one string, decoded once).
 *
 * Frame body (after the 4-byte length every frame has): byte 0 is 0x00
 * (a JSON body starts with `{`), byte 1 COMPACT_VERSION, byte 2 the kind (1:
 * records), then the flow (u32 BE), the length of the optional `nodes` JSON
 * (u32 BE, 0 for none) and that JSON, then the batch:
 *   strings: varint count, each varint (bytes << 1 | json) and its UTF-8
 *            (json = 1: the string is JSON text, for one UTF-8 cannot carry);
 *   shapes:  varint count, each varint key count and the keys' string indexes;
 *   records: varint count, each a value.
 * A value is a tag byte and its body: null, false, true; UINT/NINT (varint
 * of n or -n, safe integers); F64 (8 bytes LE); STR (string index); ARR
 * (varint count, values); OBJ (shape index, one value per key).
 * Every count and index is checked against what the frame holds: a
 * malformed frame is a FlowgrabError (FG_ERR_PROTOCOL) naming the fault.
 */
import { FlowgrabError } from '../errors.js';

/** First byte of a compact frame's body. */
export const COMPACT_MARK = 0;
/** The compact format's own version (byte 1): a client refuses one it does not know. */
export const COMPACT_VERSION = 1;
/** Frame kind (byte 2): a batch of one flow's records. */
export const COMPACT_RECORDS = 1;
/** Deepest nesting encoded; a deeper record (or a cycle) is sent as JSON instead. */
export const COMPACT_MAX_DEPTH = 64;
/** Bytes before the `nodes` JSON: mark, version, kind, flow, nodes length. */
export const COMPACT_HEAD = 11;

const T_NULL = 0;
const T_FALSE = 1;
const T_TRUE = 2;
const T_UINT = 3;
const T_NINT = 4;
const T_F64 = 5;
const T_STR = 6;
const T_ARR = 7;
const T_OBJ = 8;

/** A value JSON cannot carry: the batch goes as JSON, which says why (or drops it) as it always did. */
class NotCompact extends Error {}

interface ShapeNode {
  next: Map<string, ShapeNode>;
  id: number;
}

/** Grows by doubling; one per encode. */
class Out {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }
  /** Non-negative safe integer, 7 bits a byte, low first. */
  varint(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }
}

class Encoder {
  readonly values = new Out();
  readonly strings = new Map<string, number>();
  readonly stringList: string[] = [];
  readonly shapes: number[][] = [];
  private readonly root: ShapeNode = { next: new Map(), id: -1 };

  str(s: string): number {
    let i = this.strings.get(s);
    if (i === undefined) {
      i = this.stringList.length;
      this.strings.set(s, i);
      this.stringList.push(s);
    }
    return i;
  }

  /** JSON.stringify's view of a value: toJSON applied, boxed primitives unboxed. */
  private jsonView(v: unknown, key: string): unknown {
    if (typeof v === 'object' && v !== null) {
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function')
        v = (v as { toJSON(k: string): unknown }).toJSON(key);
      if (v instanceof Number || v instanceof String || v instanceof Boolean) v = v.valueOf();
    }
    if (typeof v === 'bigint') throw new NotCompact('bigint');
    return v;
  }

  value(v: unknown, key: string, depth: number): void {
    this.viewed(this.jsonView(v, key), depth);
  }

  /** A value JSON.stringify's view has been taken of (toJSON runs once, as there). */
  private viewed(v: unknown, depth: number): void {
    const o = this.values;
    switch (typeof v) {
      case 'string':
        o.u8(T_STR);
        o.varint(this.str(v));
        return;
      case 'number':
        if (Number.isSafeInteger(v)) {
          o.u8(v >= 0 ? T_UINT : T_NINT); // -0 is 0, as in JSON
          o.varint(Math.abs(v));
        } else if (Number.isFinite(v)) {
          o.u8(T_F64);
          o.room(8);
          o.pos = o.buf.writeDoubleLE(v, o.pos);
        } else o.u8(T_NULL);
        return;
      case 'boolean':
        o.u8(v ? T_TRUE : T_FALSE);
        return;
      case 'object':
        break;
      default:
        o.u8(T_NULL); // undefined, a function, a symbol: null in an array, as JSON has it
        return;
    }
    if (v === null) {
      o.u8(T_NULL);
      return;
    }
    if (depth >= COMPACT_MAX_DEPTH) throw new NotCompact('too deep');
    if (Array.isArray(v)) {
      o.u8(T_ARR);
      o.varint(v.length);
      for (let i = 0; i < v.length; i++) this.value(v[i], String(i), depth + 1);
      return;
    }
    const obj = v as Record<string, unknown>;
    // The shape: the keys JSON would write (values that are not undefined, functions or symbols once viewed).
    const kept: unknown[] = [];
    let node = this.root;
    for (const k of Object.keys(obj)) {
      const x = this.jsonView(obj[k], k);
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      kept.push(k, x);
      let next = node.next.get(k);
      if (!next) {
        next = { next: new Map(), id: -1 };
        node.next.set(k, next);
      }
      node = next;
    }
    if (node.id < 0) {
      node.id = this.shapes.length;
      const ids: number[] = [];
      for (let i = 0; i < kept.length; i += 2) ids.push(this.str(kept[i] as string));
      this.shapes.push(ids);
    }
    o.u8(T_OBJ);
    o.varint(node.id);
    for (let i = 1; i < kept.length; i += 2) this.viewed(kept[i], depth + 1);
  }

  /** The whole batch: string and shape tables, then the values. */
  finish(count: number): Buffer {
    const head = new Out();
    head.varint(this.stringList.length);
    for (const s of this.stringList) {
      let bytes = Buffer.byteLength(s, 'utf8');
      let json = 0;
      let text = s;
      if (bytes !== s.length && !(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
        // A lone surrogate: UTF-8 cannot carry it, JSON's \u escape can.
        text = JSON.stringify(s);
        bytes = text.length;
        json = 1;
      }
      head.varint(bytes * 2 + json);
      head.room(bytes);
      head.pos += head.buf.write(text, head.pos, 'utf8');
    }
    head.varint(this.shapes.length);
    for (const ids of this.shapes) {
      head.varint(ids.length);
      for (const id of ids) head.varint(id);
    }
    head.varint(count);
    const out = Buffer.allocUnsafe(head.pos + this.values.pos);
    head.buf.copy(out, 0, 0, head.pos);
    this.values.buf.copy(out, head.pos, 0, this.values.pos);
    return out;
  }
}

/**
 * A batch of records in the compact form, or undefined when one of them is
 * something JSON says differently (a bigint, nesting past COMPACT_MAX_DEPTH,
 * a cycle): the caller sends that batch as JSON.
 */
export function encodeCompact(records: readonly unknown[]): Buffer | undefined {
  const e = new Encoder();
  try {
    for (let i = 0; i < records.length; i++) e.value(records[i], String(i), 0);
  } catch (err) {
    if (err instanceof NotCompact) return undefined;
    throw err;
  }
  return e.finish(records.length);
}

/** A compact records frame's body around a batch already encoded (shared by every client that gets it). */
export function compactFrame(flow: number, nodes: string, batch: Buffer): Buffer {
  const n = Buffer.byteLength(nodes, 'utf8');
  const len = COMPACT_HEAD + n + batch.length;
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32BE(len, 0);
  out[4] = COMPACT_MARK;
  out[5] = COMPACT_VERSION;
  out[6] = COMPACT_RECORDS;
  out.writeUInt32BE(flow, 7);
  out.writeUInt32BE(n, 11);
  out.write(nodes, 15, 'utf8');
  batch.copy(out, 15 + n);
  return out;
}

const malformed = (why: string, at: number) =>
  new FlowgrabError('FG_ERR_PROTOCOL', `flowgrabd sent a malformed compact records frame: ${why} at byte ${at}`, {
    op: 'daemon',
  });

/** What a compact frame holds before its records are decoded. */
export interface CompactHead {
  flow: number;
  /** The `nodes` JSON text, '' when none. */
  nodes: string;
  /** Where the batch begins. */
  at: number;
}

/** Reads a compact frame's head (the frame without its length prefix); refuses another version or kind. */
export function readCompactHead(frame: Buffer): CompactHead {
  if (frame.length < COMPACT_HEAD) throw malformed(`${frame.length} bytes, shorter than its head`, 0);
  if (frame[1] !== COMPACT_VERSION)
    throw new FlowgrabError(
      'FG_ERR_PROTOCOL',
      `flowgrabd sent compact frames of version ${frame[1]}; this client reads version ${COMPACT_VERSION}`,
      { op: 'daemon' },
    );
  if (frame[2] !== COMPACT_RECORDS) throw malformed(`unknown kind ${frame[2]}`, 2);
  const flow = frame.readUInt32BE(3);
  const n = frame.readUInt32BE(7);
  if (n > frame.length - COMPACT_HEAD) throw malformed(`nodes of ${n} bytes past the frame's end`, 7);
  return { flow, nodes: frame.toString('utf8', COMPACT_HEAD, COMPACT_HEAD + n), at: COMPACT_HEAD + n };
}

/** Decodes a batch from `at` to the end of `buf`: exactly the records, nothing left over. */
export function decodeCompact(buf: Buffer, at: number): unknown[] {
  let pos = at;
  const end = buf.length;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (pos >= end) throw malformed('a number past the end', pos);
      const b = buf[pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (n > Number.MAX_SAFE_INTEGER) throw malformed('a number over 2^53', pos);
        return n;
      }
      mul *= 0x80;
    }
    throw malformed('a number of more than 8 bytes', pos);
  };
  /** A varint, with the one-byte case (most indexes and counters) first. */
  const small = (): number => {
    const b = buf[pos]; // undefined past the end: varint says so
    if (b < 0x80) {
      pos++;
      return b;
    }
    return varint();
  };
  /** A count of things that take at least a byte each: no more than the bytes left. */
  const count = (what: string): number => {
    const start = pos;
    const n = varint();
    if (n > end - pos) throw malformed(`${n} ${what}, more than the ${end - pos} bytes left`, start);
    return n;
  };

  const strings: string[] = new Array(count('strings'));
  for (let i = 0; i < strings.length; i++) {
    const start = pos;
    const lf = varint();
    const len = Math.floor(lf / 2);
    if (len > end - pos) throw malformed(`a string of ${len} bytes past the end`, start);
    const text = buf.toString('utf8', pos, pos + len);
    pos += len;
    if (lf % 2 === 0) strings[i] = text;
    else {
      let s: unknown;
      try {
        s = JSON.parse(text);
      } catch {
        s = undefined;
      }
      if (typeof s !== 'string') throw malformed('a JSON string that is not one', start);
      strings[i] = s;
    }
  }
  const shapes: string[][] = new Array(count('shapes'));
  const proto: boolean[] = new Array(shapes.length);
  for (let i = 0; i < shapes.length; i++) {
    const keys: string[] = new Array(count('keys'));
    let p = false;
    for (let k = 0; k < keys.length; k++) {
      const start = pos;
      const id = varint();
      if (id >= strings.length) throw malformed(`key ${id} of ${strings.length} strings`, start);
      keys[k] = strings[id];
      if (keys[k] === '__proto__') p = true;
    }
    shapes[i] = keys;
    proto[i] = p;
  }

  const value = (depth: number): unknown => {
    if (pos >= end) throw malformed('a value past the end', pos);
    const start = pos;
    const tag = buf[pos++];
    switch (tag) {
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_UINT:
        return small();
      case T_NINT: {
        const n = varint();
        return n === 0 ? 0 : -n;
      }
      case T_F64: {
        if (end - pos < 8) throw malformed('a float past the end', start);
        const x = buf.readDoubleLE(pos);
        pos += 8;
        if (!Number.isFinite(x)) throw malformed('a float that JSON cannot hold', start);
        return x;
      }
      case T_STR: {
        const id = small();
        if (id >= strings.length) throw malformed(`string ${id} of ${strings.length}`, start);
        return strings[id];
      }
      case T_ARR: {
        if (depth >= COMPACT_MAX_DEPTH) throw malformed(`nesting deeper than ${COMPACT_MAX_DEPTH}`, start);
        const a: unknown[] = new Array(count('array items'));
        for (let i = 0; i < a.length; i++) a[i] = value(depth + 1);
        return a;
      }
      case T_OBJ: {
        if (depth >= COMPACT_MAX_DEPTH) throw malformed(`nesting deeper than ${COMPACT_MAX_DEPTH}`, start);
        const id = small();
        if (id >= shapes.length) throw malformed(`shape ${id} of ${shapes.length}`, start);
        const keys = shapes[id];
        const o: Record<string, unknown> = {};
        if (proto[id])
          // JSON.parse makes `__proto__` an own property; an assignment would set the prototype.
          for (const k of keys)
            Object.defineProperty(o, k, {
              value: value(depth + 1),
              enumerable: true,
              writable: true,
              configurable: true,
            });
        else for (let k = 0; k < keys.length; k++) o[keys[k]] = value(depth + 1);
        return o;
      }
      default:
        throw malformed(`unknown tag ${tag}`, start);
    }
  };

  const records: unknown[] = new Array(count('records'));
  for (let i = 0; i < records.length; i++) records[i] = value(0);
  if (pos !== end) throw malformed(`${end - pos} bytes left over`, pos);
  return records;
}
