/**
 * NFULNL_MSG_PACKET codec: one logged packet with its metadata. Values are
 * big-endian; the payload starts at the L3 header.
 */
import { AttrWriter } from '../attr.js';
import { decodeNfGenMsg, NFNL_SUBSYS_ULOG, nfPayload, nfType } from '../nfnetlink.js';
import {
  decodePacketAttrs,
  encodePacketMeta,
  encodePacketTail,
  into,
  type PacketMeta,
  type PacketMetaAttrs,
  type PacketTimestamp,
  packetAttrTable,
  read,
} from '../nfpacket.js';
import * as L from './enums.js';

/** A logged packet: the shared PacketMeta fields (under NFULA_* numbers) and NFLOG's own. */
export interface NflogPacket extends PacketMeta {
  /** nfgenmsg family of the logged packet (AF_INET 2 / AF_INET6 10). */
  family: number;
  /** The NFLOG group (nfgenmsg res_id). */
  group: number;
  hwProtocol: number;
  hook: number;
  /** Seconds and microseconds since the epoch, as the kernel sent them. */
  timestamp?: PacketTimestamp;
  prefix?: string;
  /** Per-instance sequence number (NFULNL_CFG_F_SEQ): gaps are exact loss counts. */
  seq?: number;
  seqGlobal?: number;
  hwtype?: number;
  hwheader?: Buffer;
}

const OP = 'nflog packet';

/** The shared packet fields under their NFULA_* numbers. */
const ATTRS: PacketMetaAttrs = {
  mark: L.NFULA_MARK,
  timestamp: L.NFULA_TIMESTAMP,
  indev: L.NFULA_IFINDEX_INDEV,
  outdev: L.NFULA_IFINDEX_OUTDEV,
  physindev: L.NFULA_IFINDEX_PHYSINDEV,
  physoutdev: L.NFULA_IFINDEX_PHYSOUTDEV,
  hwaddr: L.NFULA_HWADDR,
  uid: L.NFULA_UID,
  gid: L.NFULA_GID,
  payload: L.NFULA_PAYLOAD,
};

const TABLE = packetAttrTable<NflogPacket>(ATTRS, {
  [L.NFULA_PACKET_HDR]: (r, p) => {
    const v = r.need(3, 'nfulnl_msg_packet_hdr');
    p.hwProtocol = r.buffer.readUInt16BE(v);
    p.hook = r.buffer[v + 2];
  },
  [L.NFULA_PREFIX]: into('prefix', read.string),
  [L.NFULA_SEQ]: into('seq', read.u32be),
  [L.NFULA_SEQ_GLOBAL]: into('seqGlobal', read.u32be),
  [L.NFULA_HWTYPE]: into('hwtype', read.u16be),
  [L.NFULA_HWHEADER]: into('hwheader', read.bytes),
  [L.NFULA_HWLEN]: () => {}, // the length of NFULA_HWHEADER, re-derived on encode
});

/** Decodes a packet message payload (nfgenmsg + attributes). Throws DecodeError on malformed input, nothing else. */
export function decodeNflogPacket(payload: Buffer): NflogPacket {
  const g = decodeNfGenMsg(payload);
  const p: NflogPacket = { family: g.family, group: g.resId, hwProtocol: 0, hook: 0 };
  decodePacketAttrs(payload, OP, TABLE, p, L.NFULA_PACKET_HDR);
  return p;
}

/**
 * Encodes a packet message payload (nfgenmsg + attributes) in the order
 * __build_packet_message writes them, so captured messages re-encode byte
 * for byte: hdr, prefix, devices, mark, hw, timestamp, uid/gid, seq, payload.
 */
export function encodeNflogPacket(p: NflogPacket): { type: number; payload: Buffer } {
  const w = new AttrWriter();
  const hdr = Buffer.alloc(4);
  hdr.writeUInt16BE(p.hwProtocol, 0);
  hdr[2] = p.hook;
  w.bytes(L.NFULA_PACKET_HDR, hdr);
  if (p.prefix !== undefined) w.string(L.NFULA_PREFIX, p.prefix);
  encodePacketMeta(w, ATTRS, p, ['indev', 'physindev', 'outdev', 'physoutdev', 'mark', 'hwaddr']);
  if (p.hwtype !== undefined) w.u16be(L.NFULA_HWTYPE, p.hwtype);
  if (p.hwheader) {
    w.u16be(L.NFULA_HWLEN, p.hwheader.length);
    w.bytes(L.NFULA_HWHEADER, p.hwheader);
  }
  encodePacketMeta(w, ATTRS, p, ['timestamp', 'uid', 'gid']);
  if (p.seq !== undefined) w.u32be(L.NFULA_SEQ, p.seq);
  if (p.seqGlobal !== undefined) w.u32be(L.NFULA_SEQ_GLOBAL, p.seqGlobal);
  encodePacketTail(w, ATTRS, p);
  return { type: nfType(NFNL_SUBSYS_ULOG, L.NFULNL_MSG_PACKET), payload: nfPayload(p.family, p.group, w.toBuffer()) };
}
