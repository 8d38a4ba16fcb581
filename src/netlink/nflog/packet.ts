/**
 * NFULNL_MSG_PACKET codec: one logged packet with its metadata. Values are
 * big-endian; the payload starts at the L3 header.
 */
import { AttrReader, AttrWriter, type RawAttr } from '../attr.js';
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

/** Decodes a packet message payload (nfgenmsg + attributes). Throws DecodeError on malformed input, nothing else. */
export function decodeNflogPacket(payload: Buffer): NflogPacket {
  const g = decodeNfGenMsg(payload);
  const p: NflogPacket = { family: g.family, group: g.resId, hwProtocol: 0, hook: 0 };
  const r = new AttrReader(OP).reset(payload, NFGENMSG_LEN);
  while (r.next()) {
    switch (r.type()) {
      case L.NFULA_PACKET_HDR: {
        const v = r.need(3, 'nfulnl_msg_packet_hdr');
        p.hwProtocol = payload.readUInt16BE(v);
        p.hook = payload[v + 2];
        break;
      }
      case L.NFULA_MARK:
        p.mark = r.u32be();
        break;
      case L.NFULA_TIMESTAMP:
        p.timestamp = decodePacketTimestamp(r);
        break;
      case L.NFULA_IFINDEX_INDEV:
        p.indev = r.u32be();
        break;
      case L.NFULA_IFINDEX_OUTDEV:
        p.outdev = r.u32be();
        break;
      case L.NFULA_IFINDEX_PHYSINDEV:
        p.physindev = r.u32be();
        break;
      case L.NFULA_IFINDEX_PHYSOUTDEV:
        p.physoutdev = r.u32be();
        break;
      case L.NFULA_HWADDR:
        p.hwaddr = decodeHwAddr(r);
        break;
      case L.NFULA_PAYLOAD:
        p.payload = r.bytes();
        break;
      case L.NFULA_PREFIX:
        p.prefix = r.string();
        break;
      case L.NFULA_UID:
        p.uid = r.u32be();
        break;
      case L.NFULA_GID:
        p.gid = r.u32be();
        break;
      case L.NFULA_SEQ:
        p.seq = r.u32be();
        break;
      case L.NFULA_SEQ_GLOBAL:
        p.seqGlobal = r.u32be();
        break;
      case L.NFULA_HWTYPE:
        p.hwtype = r.u16be();
        break;
      case L.NFULA_HWHEADER:
        p.hwheader = r.bytes();
        break;
      case L.NFULA_HWLEN:
        break; // the length of NFULA_HWHEADER, re-derived on encode
      default:
        (p.unknown ??= []).push(r.raw(true));
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
