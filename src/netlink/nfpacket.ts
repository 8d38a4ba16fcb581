/**
 * The structs nfnetlink_log and nfnetlink_queue share for a packet's hardware
 * address and timestamp (nf{ulnl,qnl}_msg_packet_hw / _timestamp), big-endian.
 * Each decoder reads the attribute an AttrReader is on. Below them, the
 * table both packet codecs decode and encode their common attributes with.
 */
import { AttrReader, type AttrWriter, type RawAttr } from './attr.js';
import { NFGENMSG_LEN } from './nfnetlink.js';

/** {be16 hw_addrlen; u16 pad; u8 hw_addr[8]} */
export function decodeHwAddr(r: AttrReader): Buffer {
  const v = r.valueStart;
  const size = r.len();
  const len = size >= 2 ? r.u16be() : -1;
  if (len < 0 || len > 8 || len > size - 4) throw r.error('bad packet hardware address struct');
  return Buffer.from(r.buffer.subarray(v + 4, v + 4 + len));
}

export function encodeHwAddr(mac: Buffer): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(mac.length, 0);
  mac.copy(h, 4);
  return h;
}

export interface PacketTimestamp {
  sec: bigint;
  usec: bigint;
}

/** {be64 sec; be64 usec} */
export function decodePacketTimestamp(r: AttrReader): PacketTimestamp {
  const v = r.need(16, 'packet timestamp');
  return { sec: r.buffer.readBigUInt64BE(v), usec: r.buffer.readBigUInt64BE(v + 8) };
}

export function encodePacketTimestamp(t: PacketTimestamp): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(t.sec, 0);
  b.writeBigUInt64BE(t.usec, 8);
  return b;
}

/**
 * The packet metadata nfnetlink_log and nfnetlink_queue both send, each
 * under its own attribute numbers (NFULA_* / NFQA_*), with the same value
 * layout: devices, mark, hardware address, timestamp, owner, payload.
 */
export interface PacketMeta {
  mark?: number;
  timestamp?: PacketTimestamp;
  indev?: number;
  outdev?: number;
  physindev?: number;
  physoutdev?: number;
  hwaddr?: Buffer;
  uid?: number;
  gid?: number;
  payload?: Buffer;
  unknown?: RawAttr[];
}

/** The shared fields: every PacketMeta key but `unknown`. */
export type PacketMetaField = Exclude<keyof PacketMeta, 'unknown'>;

/** One subsystem's attribute number for each shared field. */
export type PacketMetaAttrs = { readonly [K in PacketMetaField]: number };

const U32BE = { decode: (r: AttrReader) => r.u32be(), encode: (w: AttrWriter, t: number, v: number) => w.u32be(t, v) };

/** How each shared field's value is read and written (the same in both subsystems). */
const FIELDS: {
  readonly [K in PacketMetaField]: {
    decode(r: AttrReader): NonNullable<PacketMeta[K]>;
    encode(w: AttrWriter, type: number, v: NonNullable<PacketMeta[K]>): void;
  };
} = {
  mark: U32BE,
  timestamp: { decode: decodePacketTimestamp, encode: (w, t, v) => w.bytes(t, encodePacketTimestamp(v)) },
  indev: U32BE,
  outdev: U32BE,
  physindev: U32BE,
  physoutdev: U32BE,
  hwaddr: { decode: decodeHwAddr, encode: (w, t, v) => w.bytes(t, encodeHwAddr(v)) },
  uid: U32BE,
  gid: U32BE,
  payload: { decode: (r) => r.bytes(), encode: (w, t, v) => w.bytes(t, v) },
};

/** Reads the attribute an AttrReader is on into a packet. */
export type PacketAttrDecoder<P> = (r: AttrReader, p: P) => void;

/** A decoder that stores the value `read` gives under `key`: a packet's own attribute, in its table. */
export function into<P, K extends keyof P>(key: K, read: (r: AttrReader) => P[K]): PacketAttrDecoder<P> {
  return (r, p) => {
    p[key] = read(r);
  };
}

/** Value readers for `into`, by the value's kind. */
export const read = {
  u16be: (r: AttrReader): number => r.u16be(),
  u32be: (r: AttrReader): number => r.u32be(),
  string: (r: AttrReader): string => r.string(),
  bytes: (r: AttrReader): Buffer => r.bytes(),
} as const;

/** A packet decoder's table, indexed by attribute type. */
export type PacketAttrTable<P> = readonly (PacketAttrDecoder<P> | undefined)[];

/**
 * The decode table of one subsystem's packet: the shared fields under its
 * numbers `attrs`, then its own attributes (`own`, by attribute type).
 */
export function packetAttrTable<P extends PacketMeta>(
  attrs: PacketMetaAttrs,
  own: Readonly<Record<number, PacketAttrDecoder<P>>>,
): PacketAttrTable<P> {
  const table: PacketAttrDecoder<P>[] = [];
  for (const k of Object.keys(FIELDS) as PacketMetaField[]) {
    const { decode } = FIELDS[k];
    table[attrs[k]] = (r, p) => {
      (p as Record<PacketMetaField, unknown>)[k] = decode(r);
    };
  }
  for (const [type, decode] of Object.entries(own)) table[Number(type)] = decode;
  return table;
}

/**
 * Walks a packet message's attributes (after its nfgenmsg) through `table`
 * into `p`; one the table lacks is kept (copied) in `p.unknown`, so nothing
 * is silently dropped. Returns whether the packet header attribute
 * `hdrType` was among them. Throws DecodeError (naming `op`) on malformed
 * input, nothing else.
 */
export function decodePacketAttrs<P extends PacketMeta>(
  payload: Buffer,
  op: string,
  table: PacketAttrTable<P>,
  p: P,
  hdrType: number,
): boolean {
  let sawHdr = false;
  const r = new AttrReader(op).reset(payload, NFGENMSG_LEN);
  while (r.next()) {
    const type = r.type();
    const decode = table[type];
    if (type === hdrType) sawHdr = true;
    if (decode) decode(r, p);
    else (p.unknown ??= []).push(r.raw(true));
  }
  return sawHdr;
}

/**
 * Writes the shared fields `fields` of `p` that are set, in that order,
 * under the numbers `attrs`: each subsystem lists them in the order its
 * kernel builder writes them, so captured messages re-encode byte for byte.
 */
export function encodePacketMeta(
  w: AttrWriter,
  attrs: PacketMetaAttrs,
  p: PacketMeta,
  fields: readonly PacketMetaField[],
): void {
  for (const k of fields) {
    const v = p[k];
    if (v !== undefined) (FIELDS[k].encode as (w: AttrWriter, type: number, v: unknown) => void)(w, attrs[k], v);
  }
}

/** Writes the attributes kept in `p.unknown`, then the payload: the end of every packet message. */
export function encodePacketTail(w: AttrWriter, attrs: PacketMetaAttrs, p: PacketMeta): void {
  for (const a of p.unknown ?? []) w.raw(a);
  encodePacketMeta(w, attrs, p, ['payload']);
}
