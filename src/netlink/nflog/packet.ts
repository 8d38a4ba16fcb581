/**
 * NFULNL_MSG_PACKET codec: one logged packet with its metadata. Values are
 * big-endian; the payload starts at the L3 header.
 */
import { DecodeError } from '../../errors.js';
import {
  AttrWriter,
  attrNested,
  attrType,
  attrValueEnd,
  beU16,
  beU32,
  cString,
  nextAttr,
  type RawAttr,
} from '../attr.js';
import { NLA_HDRLEN } from '../enums.js';
import { decodeNfGenMsg, NFGENMSG_LEN, NFNL_SUBSYS_ULOG, nfPayload, nfType } from '../nfnetlink.js';
import { decodeHwAddr, decodePacketTimestamp, encodeHwAddr, encodePacketTimestamp } from '../nfpacket.js';
import * as L from './enums.js';

export interface NflogPacket {
  /** nfgenmsg family of the logged packet (AF_INET 2 / AF_INET6 10). */
  family: number;
  /** The NFLOG group (nfgenmsg res_id). */
  group: number;
  hwProtocol: number;
  hook: number;
  mark?: number;
  /** Seconds and microseconds since the epoch, as the kernel sent them. */
  timestamp?: { sec: bigint; usec: bigint };
  indev?: number;
  outdev?: number;
  physindev?: number;
  physoutdev?: number;
  hwaddr?: Buffer;
  payload?: Buffer;
  prefix?: string;
  uid?: number;
  gid?: number;
  /** Per-instance sequence number (NFULNL_CFG_F_SEQ): gaps are exact loss counts. */
  seq?: number;
  seqGlobal?: number;
  hwtype?: number;
  hwheader?: Buffer;
  unknown?: RawAttr[];
}

const OP = 'nflog packet';

function u32Field(buf: Buffer, o: number, vEnd: number): number {
  return beU32(buf, o, vEnd, OP);
}

export function decodeNflogPacket(payload: Buffer): NflogPacket {
  const g = decodeNfGenMsg(payload);
  const p: NflogPacket = { family: g.family, group: g.resId, hwProtocol: 0, hook: 0 };
  const end = payload.length;
  for (let o = NFGENMSG_LEN; o < end; o = nextAttr(payload, o)) {
    const vEnd = attrValueEnd(payload, o, end, OP);
    const v = o + NLA_HDRLEN;
    const bytes = () => Buffer.from(payload.subarray(v, vEnd));
    switch (attrType(payload, o)) {
      case L.NFULA_PACKET_HDR:
        if (vEnd - v < 3) throw new DecodeError('nfulnl_msg_packet_hdr needs 3 bytes', o, OP);
        p.hwProtocol = payload.readUInt16BE(v);
        p.hook = payload[v + 2];
        break;
      case L.NFULA_MARK:
        p.mark = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_TIMESTAMP:
        p.timestamp = decodePacketTimestamp(payload, o, vEnd, OP);
        break;
      case L.NFULA_IFINDEX_INDEV:
        p.indev = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_IFINDEX_OUTDEV:
        p.outdev = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_IFINDEX_PHYSINDEV:
        p.physindev = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_IFINDEX_PHYSOUTDEV:
        p.physoutdev = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_HWADDR:
        p.hwaddr = decodeHwAddr(payload, o, vEnd, OP);
        break;
      case L.NFULA_PAYLOAD:
        p.payload = bytes();
        break;
      case L.NFULA_PREFIX:
        p.prefix = cString(payload, o, vEnd);
        break;
      case L.NFULA_UID:
        p.uid = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_GID:
        p.gid = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_SEQ:
        p.seq = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_SEQ_GLOBAL:
        p.seqGlobal = u32Field(payload, o, vEnd);
        break;
      case L.NFULA_HWTYPE:
        p.hwtype = beU16(payload, o, vEnd, OP);
        break;
      case L.NFULA_HWHEADER:
        p.hwheader = bytes();
        break;
      case L.NFULA_HWLEN:
        break; // the length of NFULA_HWHEADER, re-derived on encode

      default:
        (p.unknown ??= []).push({ type: attrType(payload, o), nested: attrNested(payload, o), value: bytes() });
    }
  }
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
  if (p.indev !== undefined) w.u32be(L.NFULA_IFINDEX_INDEV, p.indev);
  if (p.physindev !== undefined) w.u32be(L.NFULA_IFINDEX_PHYSINDEV, p.physindev);
  if (p.outdev !== undefined) w.u32be(L.NFULA_IFINDEX_OUTDEV, p.outdev);
  if (p.physoutdev !== undefined) w.u32be(L.NFULA_IFINDEX_PHYSOUTDEV, p.physoutdev);
  if (p.mark !== undefined) w.u32be(L.NFULA_MARK, p.mark);
  if (p.hwaddr) w.bytes(L.NFULA_HWADDR, encodeHwAddr(p.hwaddr));
  if (p.hwtype !== undefined) w.u16be(L.NFULA_HWTYPE, p.hwtype);
  if (p.hwheader) {
    w.u16be(L.NFULA_HWLEN, p.hwheader.length);
    w.bytes(L.NFULA_HWHEADER, p.hwheader);
  }
  if (p.timestamp) w.bytes(L.NFULA_TIMESTAMP, encodePacketTimestamp(p.timestamp));
  if (p.uid !== undefined) w.u32be(L.NFULA_UID, p.uid);
  if (p.gid !== undefined) w.u32be(L.NFULA_GID, p.gid);
  if (p.seq !== undefined) w.u32be(L.NFULA_SEQ, p.seq);
  if (p.seqGlobal !== undefined) w.u32be(L.NFULA_SEQ_GLOBAL, p.seqGlobal);
  for (const a of p.unknown ?? []) w.raw(a);
  if (p.payload) w.bytes(L.NFULA_PAYLOAD, p.payload);
  return { type: nfType(NFNL_SUBSYS_ULOG, L.NFULNL_MSG_PACKET), payload: nfPayload(p.family, p.group, w.toBuffer()) };
}
