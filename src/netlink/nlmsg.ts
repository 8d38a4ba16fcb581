/**
 * nlmsghdr framing: pure functions over Buffer. The header is in host byte
 * order, which is little-endian on every platform flowgrab supports
 * (x86_64, arm64); `assertLittleEndian()` refuses anything else.
 */
import { endianness } from 'node:os';
import { DecodeError, FlowgrabError } from '../errors.js';
import { AttrReader, align4 } from './attr.js';
import {
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from './enums.js';

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new FlowgrabError('FG_ERR_NETLINK', 'flowgrab supports little-endian hosts only');
}

export interface NetlinkHeader {
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export interface NetlinkMessage extends NetlinkHeader {
  /** The bytes after the 16-byte header; a view into the datagram, not a copy. */
  payload: Buffer;
}

export { align4 } from './attr.js';

/** What `splitMessagesLenient` could not frame: the bytes after the last valid message, and why. */
export interface TrailingGarbage {
  bytes: number;
  offset: number;
  reason: string;
}

/**
 * Splits one datagram into its messages. Throws DecodeError on a truncated or
 * lying header, unless valid messages came before it: then, like libmnl and
 * mdlayher/netlink, those are returned and the rest is dropped (see
 * `splitMessagesLenient` to learn how many bytes were).
 */
export function splitMessages(buf: Buffer): NetlinkMessage[] {
  const r = splitMessagesLenient(buf);
  if (r.messages.length === 0 && r.trailing) {
    throw new DecodeError(r.trailing.reason, r.trailing.offset, 'nlmsg');
  }
  return r.messages;
}

/** Why the bytes of `buf` at `o` are not a whole message; undefined when they are. */
export function frameProblem(buf: Buffer, o: number, end = buf.length): string | undefined {
  const rest = end - o;
  if (rest < NLMSG_HDRLEN) return 'truncated nlmsghdr';
  const len = buf.readUInt32LE(o);
  if (len < NLMSG_HDRLEN || len > rest) return `nlmsg_len ${len} does not fit in ${rest} bytes`;
  return undefined;
}

/** The message at `o` (which frameProblem has passed), its payload a view. */
export function messageAt(buf: Buffer, o: number): NetlinkMessage {
  return {
    type: buf.readUInt16LE(o + 4),
    flags: buf.readUInt16LE(o + 6),
    seq: buf.readUInt32LE(o + 8),
    pid: buf.readUInt32LE(o + 12),
    payload: buf.subarray(o + NLMSG_HDRLEN, o + buf.readUInt32LE(o)),
  };
}

/** The valid messages at the start of `buf`, and what followed them when it was not a message. */
export function splitMessagesLenient(buf: Buffer): { messages: NetlinkMessage[]; trailing?: TrailingGarbage } {
  const out: NetlinkMessage[] = [];
  let o = 0;
  while (o < buf.length) {
    const reason = frameProblem(buf, o);
    if (reason) return { messages: out, trailing: { bytes: buf.length - o, offset: o, reason } };
    out.push(messageAt(buf, o));
    // len ≤ buf.length here, so this cannot overflow; a last message may lack its padding.
    o += align4(buf.readUInt32LE(o));
  }
  return { messages: out };
}

export function encodeMessage(h: NetlinkHeader, payload: Buffer): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(h.type, 4);
  buf.writeUInt16LE(h.flags, 6);
  buf.writeUInt32LE(h.seq >>> 0, 8);
  buf.writeUInt32LE(h.pid >>> 0, 12);
  payload.copy(buf, NLMSG_HDRLEN);
  return buf;
}

export interface NetlinkErrorPayload {
  /** 0 for an ACK, a positive errno otherwise. */
  errno: number;
  /** Header of the request this answers. */
  request: NetlinkHeader;
  /** Extended ack (NETLINK_EXT_ACK): the kernel's explanation and the offending byte offset. */
  extAckMessage?: string;
  extAckOffset?: number;
}

/** Decodes an NLMSG_ERROR payload (struct nlmsgerr + optional extended-ack TLVs). */
export function decodeError(msg: NetlinkMessage): NetlinkErrorPayload {
  const p = msg.payload;
  if (msg.type !== NLMSG_ERROR) throw new DecodeError(`type ${msg.type} is not NLMSG_ERROR`, 0, 'nlmsgerr');
  if (p.length < 4 + NLMSG_HDRLEN) throw new DecodeError('truncated nlmsgerr', p.length, 'nlmsgerr');
  const out: NetlinkErrorPayload = {
    errno: -p.readInt32LE(0),
    request: { type: p.readUInt16LE(8), flags: p.readUInt16LE(10), seq: p.readUInt32LE(12), pid: p.readUInt32LE(16) },
  };
  if (!(msg.flags & NLM_F_ACK_TLVS)) return out;
  // Without CAPPED the whole original request is echoed before the TLVs.
  // The echoed length is the peer's word: a huge one just means no TLVs fit.
  const from = 4 + (msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(p.readUInt32LE(4)));
  const r = new AttrReader('nlmsgerr').reset(p, from);
  try {
    while (r.next()) {
      const type = r.type();
      if (type === NLMSGERR_ATTR_MSG) out.extAckMessage = r.string();
      if (type === NLMSGERR_ATTR_OFFS && r.len() >= 4) out.extAckOffset = r.u32();
    }
  } catch (err) {
    // A malformed TLV ends the extended ack; what came before it stands.
    if (!(err instanceof DecodeError)) throw err;
  }
  return out;
}

export function encodeError(h: NetlinkHeader, errno: number, request: NetlinkHeader): Buffer {
  const p = Buffer.alloc(4 + NLMSG_HDRLEN);
  p.writeInt32LE(-errno, 0);
  p.writeUInt32LE(NLMSG_HDRLEN, 4);
  p.writeUInt16LE(request.type, 8);
  p.writeUInt16LE(request.flags, 10);
  p.writeUInt32LE(request.seq >>> 0, 12);
  p.writeUInt32LE(request.pid >>> 0, 16);
  return encodeMessage({ ...h, type: NLMSG_ERROR }, p);
}
