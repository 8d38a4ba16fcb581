/**
 * The structs nfnetlink_log and nfnetlink_queue share for a packet's hardware
 * address and timestamp (nf{ulnl,qnl}_msg_packet_hw / _timestamp), big-endian.
 * Each takes the attribute's header offset and the end of its value.
 */
import { DecodeError } from '../errors.js';
import { NLA_HDRLEN } from './enums.js';

/** {be16 hw_addrlen; u16 pad; u8 hw_addr[8]} */
export function decodeHwAddr(buf: Buffer, o: number, vEnd: number, op: string): Buffer {
  const v = o + NLA_HDRLEN;
  const len = vEnd - v >= 2 ? buf.readUInt16BE(v) : -1;
  if (len < 0 || len > 8 || len > vEnd - v - 4) throw new DecodeError('bad packet hardware address struct', o, op);
  return Buffer.from(buf.subarray(v + 4, v + 4 + len));
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
export function decodePacketTimestamp(buf: Buffer, o: number, vEnd: number, op: string): PacketTimestamp {
  const v = o + NLA_HDRLEN;
  if (vEnd - v < 16) throw new DecodeError('packet timestamp needs 16 bytes', o, op);
  return { sec: buf.readBigUInt64BE(v), usec: buf.readBigUInt64BE(v + 8) };
}

export function encodePacketTimestamp(t: PacketTimestamp): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(t.sec, 0);
  b.writeBigUInt64BE(t.usec, 8);
  return b;
}
