/**
 * The structs nfnetlink_log and nfnetlink_queue share for a packet's hardware
 * address and timestamp (nf{ulnl,qnl}_msg_packet_hw / _timestamp), big-endian.
 * Each decoder reads the attribute an AttrReader is on.
 */
import type { AttrReader } from './attr.js';

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
