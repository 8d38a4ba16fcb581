/**
 * IPv4/IPv6 + TCP/UDP header parsing for packets the kernel hands us (NFLOG,
 * NFQUEUE payloads start at the L3 header). Total: malformed input gives a
 * DecodeError, never another throw.
 */
import { DecodeError } from '../errors.js';
import { formatIPv4, formatIPv6 } from '../netlink/ip.js';

export interface L4Packet {
  family: 'ipv4' | 'ipv6';
  src: string;
  dst: string;
  /** IP protocol number of the transport header (6 TCP, 17 UDP, 1/58 ICMP …). */
  proto: number;
  ttl: number;
  sport?: number;
  dport?: number;
  /** TCP only. */
  seq?: number;
  tcpFlags?: number;
  /** Transport payload (a view, not a copy). */
  data: Buffer;
  /** A non-first IP fragment: no transport header to read. */
  fragment?: boolean;
  /**
   * The first fragment of a fragmented datagram: the transport header is
   * here, but `data` is only the start of the payload. flowgrab does not
   * reassemble, so consumers must not parse `data` as a whole datagram.
   */
  firstFragment?: boolean;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;

const OP = 'ip packet';
// IPv6 extension headers that chain with {u8 next, u8 len}: hop-by-hop, routing, destination options.
const IPV6_EXT = new Set([0, 43, 60]);

export function parseIpPacket(b: Buffer): L4Packet {
  if (b.length < 1) throw new DecodeError('empty packet', 0, OP);
  const version = b[0] >> 4;
  if (version === 4) return ipv4(b);
  if (version === 6) return ipv6(b);
  throw new DecodeError(`IP version ${version}`, 0, OP);
}

function ipv4(b: Buffer): L4Packet {
  if (b.length < 20) throw new DecodeError('truncated IPv4 header', b.length, OP);
  const ihl = (b[0] & 0x0f) * 4;
  const total = b.readUInt16BE(2);
  if (ihl < 20 || ihl > b.length) throw new DecodeError(`IPv4 header length ${ihl}`, 0, OP);
  const end = Math.min(b.length, total >= ihl ? total : b.length);
  const frag = b.readUInt16BE(6) & 0x1fff;
  const more = (b.readUInt16BE(6) & 0x2000) !== 0;
  const p: L4Packet = {
    family: 'ipv4',
    src: formatIPv4(b, 12),
    dst: formatIPv4(b, 16),
    proto: b[9],
    ttl: b[8],
    data: b.subarray(ihl, end),
  };
  if (frag !== 0) {
    p.fragment = true;
    return p;
  }
  if (more) p.firstFragment = true;
  return transport(p, b, ihl, end);
}

function ipv6(b: Buffer): L4Packet {
  if (b.length < 40) throw new DecodeError('truncated IPv6 header', b.length, OP);
  const end = Math.min(b.length, 40 + b.readUInt16BE(4));
  let next = b[6];
  let o = 40;
  const p: L4Packet = {
    family: 'ipv6',
    src: formatIPv6(b, 8),
    dst: formatIPv6(b, 24),
    proto: next,
    ttl: b[7],
    data: b.subarray(40, end),
  };
  for (let hops = 0; hops < 8; hops++) {
    if (IPV6_EXT.has(next)) {
      if (o + 2 > end) throw new DecodeError('truncated IPv6 extension header', o, OP);
      const len = (b[o + 1] + 1) * 8;
      next = b[o];
      o += len;
    } else if (next === 44) {
      // Fragment header: only the first fragment carries the transport header.
      if (o + 8 > end) throw new DecodeError('truncated IPv6 fragment header', o, OP);
      const offset = b.readUInt16BE(o + 2) >> 3;
      const more = (b[o + 3] & 1) !== 0;
      next = b[o];
      o += 8;
      if (offset !== 0) {
        p.proto = next;
        p.fragment = true;
        p.data = b.subarray(Math.min(o, end), end);
        return p;
      }
      // Offset 0 without M is an atomic fragment (RFC 6946): a whole datagram.
      if (more) p.firstFragment = true;
    } else break;
  }
  if (o > end) throw new DecodeError('IPv6 extension headers overrun the packet', o, OP);
  p.proto = next;
  return transport(p, b, o, end);
}

function transport(p: L4Packet, b: Buffer, o: number, end: number): L4Packet {
  if (p.proto === 17 || p.proto === 136) {
    if (end - o < 8) throw new DecodeError('truncated UDP header', o, OP);
    p.sport = b.readUInt16BE(o);
    p.dport = b.readUInt16BE(o + 2);
    // The UDP length ends the datagram: bytes after it (padding, a lying IP length) are not payload.
    // 0 is an IPv6 jumbogram's (RFC 2675); a length past the capture (snaplen, first fragment) keeps what is there.
    const len = b.readUInt16BE(o + 4);
    if (len !== 0 && len < 8) throw new DecodeError(`UDP length ${len}`, o, OP);
    p.data = b.subarray(o + 8, len === 0 ? end : Math.min(end, o + len));
  } else if (p.proto === 6) {
    if (end - o < 20) throw new DecodeError('truncated TCP header', o, OP);
    const off = (b[o + 12] >> 4) * 4;
    if (off < 20 || o + off > end) throw new DecodeError(`TCP data offset ${off}`, o, OP);
    p.sport = b.readUInt16BE(o);
    p.dport = b.readUInt16BE(o + 2);
    p.seq = b.readUInt32BE(o + 4);
    p.tcpFlags = b[o + 13];
    p.data = b.subarray(o + off, end);
  } else {
    p.data = b.subarray(o, end);
  }
  return p;
}
