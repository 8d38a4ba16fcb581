/**
 * NFQNL_MSG_PACKET codec: one queued packet waiting for its verdict, with
 * its metadata. Values are big-endian; the payload starts at the L3 header.
 */
import { DecodeError } from '../../errors.js';
import { AttrReader, AttrWriter } from '../attr.js';
import { decodeNfGenMsg, NFGENMSG_LEN, NFNL_SUBSYS_QUEUE, nfPayload, nfType } from '../nfnetlink.js';
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
import { align4 } from '../nlmsg.js';
import * as Q from './enums.js';

/** A queued packet: the shared PacketMeta fields (under NFQA_* numbers) and NFQUEUE's own. */
export interface NfqPacket extends PacketMeta {
  /** nfgenmsg family of the packet (AF_INET 2 / AF_INET6 10). */
  family: number;
  /** The queue number (nfgenmsg res_id). */
  queue: number;
  /** Per-queue packet id, counting up from 1: the handle for the verdict, and gaps mean loss. */
  id: number;
  hwProtocol: number;
  hook: number;
  /** Absent when the packet's mark is 0. */
  mark?: number;
  priority?: number;
  /** Seconds and microseconds since the epoch (received packets only). */
  timestamp?: PacketTimestamp;
  secctx?: string;
  /** NFQA_CT's nested ctnetlink attributes, as sent (decodeCtEntry reads them). */
  ct?: Buffer;
  /** enum ip_conntrack_info. */
  ctInfo?: number;
  /** Length of the whole packet when the payload was cut at copy_range. */
  capLen?: number;
  skbInfo?: number;
}

const OP = 'nfqueue packet';
export const NFQUEUE_PACKET_TYPE = nfType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_PACKET);

/** The shared packet fields under their NFQA_* numbers. */
const ATTRS: PacketMetaAttrs = {
  mark: Q.NFQA_MARK,
  timestamp: Q.NFQA_TIMESTAMP,
  indev: Q.NFQA_IFINDEX_INDEV,
  outdev: Q.NFQA_IFINDEX_OUTDEV,
  physindev: Q.NFQA_IFINDEX_PHYSINDEV,
  physoutdev: Q.NFQA_IFINDEX_PHYSOUTDEV,
  hwaddr: Q.NFQA_HWADDR,
  uid: Q.NFQA_UID,
  gid: Q.NFQA_GID,
  payload: Q.NFQA_PAYLOAD,
};

const TABLE = packetAttrTable<NfqPacket>(ATTRS, {
  [Q.NFQA_PACKET_HDR]: (r, p) => {
    // struct nfqnl_msg_packet_hdr {be32 packet_id; be16 hw_protocol; u8 hook} __packed
    const v = r.need(7, 'nfqnl_msg_packet_hdr');
    p.id = r.buffer.readUInt32BE(v);
    p.hwProtocol = r.buffer.readUInt16BE(v + 4);
    p.hook = r.buffer[v + 6];
  },
  [Q.NFQA_PRIORITY]: into('priority', read.u32be),
  [Q.NFQA_SECCTX]: into('secctx', read.string),
  [Q.NFQA_CT]: into('ct', read.bytes),
  [Q.NFQA_CT_INFO]: into('ctInfo', read.u32be),
  [Q.NFQA_CAP_LEN]: into('capLen', read.u32be),
  [Q.NFQA_SKB_INFO]: into('skbInfo', read.u32be),
});

/** Decodes a packet message payload (nfgenmsg + attributes). Throws DecodeError on malformed input, nothing else. */
export function decodeNfqPacket(payload: Buffer): NfqPacket {
  const g = decodeNfGenMsg(payload);
  const p: NfqPacket = { family: g.family, queue: g.resId, id: 0, hwProtocol: 0, hook: 0 };
  // Without the header there is no id, and so no way to give the verdict.
  if (!decodePacketAttrs(payload, OP, TABLE, p, Q.NFQA_PACKET_HDR))
    throw new DecodeError('no NFQA_PACKET_HDR', NFGENMSG_LEN, OP);
  return p;
}

/**
 * Encodes a packet message payload in the order nfqnl_build_packet_message
 * writes it, so captured messages re-encode byte for byte: hdr, devices,
 * mark, priority, hw, timestamp, uid/gid, secctx, ct, cap_len, skb_info,
 * (unknown), payload — the payload unpadded, as the kernel leaves it.
 */
export function encodeNfqPacket(p: NfqPacket): { type: number; payload: Buffer } {
  const w = new AttrWriter();
  const hdr = Buffer.alloc(7);
  hdr.writeUInt32BE(p.id >>> 0, 0);
  hdr.writeUInt16BE(p.hwProtocol, 4);
  hdr[6] = p.hook;
  w.bytes(Q.NFQA_PACKET_HDR, hdr);
  encodePacketMeta(w, ATTRS, p, ['indev', 'physindev', 'outdev', 'physoutdev', 'mark']);
  if (p.priority !== undefined) w.u32be(Q.NFQA_PRIORITY, p.priority);
  encodePacketMeta(w, ATTRS, p, ['hwaddr', 'timestamp', 'uid', 'gid']);
  if (p.secctx !== undefined) w.string(Q.NFQA_SECCTX, p.secctx);
  if (p.ct) w.bytes(Q.NFQA_CT, p.ct, { nested: true });
  if (p.ctInfo !== undefined) w.u32be(Q.NFQA_CT_INFO, p.ctInfo);
  if (p.capLen !== undefined) w.u32be(Q.NFQA_CAP_LEN, p.capLen);
  if (p.skbInfo !== undefined) w.u32be(Q.NFQA_SKB_INFO, p.skbInfo);
  encodePacketTail(w, ATTRS, p);
  let attrs = w.toBuffer();
  // The kernel copies the payload last and unpadded (nlmsg_len ends with the packet's last byte).
  if (p.payload) attrs = attrs.subarray(0, attrs.length - (align4(p.payload.length) - p.payload.length));
  return { type: NFQUEUE_PACKET_TYPE, payload: nfPayload(p.family, p.queue, attrs) };
}

/** The packet id of a message that failed to decode as a whole, when its header can still be read. */
export function peekNfqPacketId(payload: Buffer): number | undefined {
  try {
    const r = new AttrReader(OP).reset(payload, NFGENMSG_LEN);
    while (r.next()) if (r.type() === Q.NFQA_PACKET_HDR) return r.u32be();
  } catch {
    // Nothing readable: the caller counts it as loss.
  }
  return undefined;
}
