/**
 * The hot path's attribute walk: one ctnetlink entry's attributes gathered
 * into numbers and message offsets, allocating nothing but the texts no
 * offset can stand for (IPv6 addresses, a helper's name, labels). The
 * decoder makes a ConntrackRecord of it (decode.ts); the JSON writer writes
 * it out without one (json-writer.ts). Repeated attributes follow nla_parse,
 * as the reference codec (src/netlink/conntrack) does: the last wins, and a
 * repeated nest (a tuple, its IP or proto part, the counters) replaces its
 * predecessor as a whole. Attribute headers are little-endian (host),
 * values big-endian.
 */

import { DecodeError } from '../../errors.js';
import { attrEnd, attrNeed, attrNext, attrType, cStringAt, ipAt, u16beAt, u32beAt } from '../../netlink/attr.js';
import * as C from '../../netlink/conntrack/enums.js';
import { statusNames } from './status.js';

/** u64 BE nanoseconds → whole ms, exactly: hi·2^32 = hi·4294·10^6 + hi·967296. */
export const nsToMs = (b: Buffer, o: number): number => {
  const hi = u32beAt(b, o);
  return hi * 4294 + Math.floor((hi * 967296 + u32beAt(b, o + 4)) / 1e6);
};

/** A protocol's name (tcp, udp, …), or its number as text. */
export const protoName = (n: number): string => C.PROTO_NAMES[n] ?? String(n);

/** Status arrays are shared between records with the same bits: frozen, so nobody mutates a neighbour's. */
const statusCache = new Map<number, string[]>();
export function statusList(bits: number): string[] {
  let s = statusCache.get(bits);
  if (!s) {
    s = Object.freeze(statusNames(bits)) as string[];
    if (statusCache.size < 4096) statusCache.set(bits, s);
  }
  return s;
}

const SAFE_HI = 0x20_0000; // a u64 whose high word reaches 2^21 is ≥ 2^53
/** u64 BE counter as a number, exact below 2^53; above, saturated at 2^53 - 1 (`saturated` says so). */
const u64Sat = (b: Buffer, o: number): number => {
  const hi = u32beAt(b, o);
  return hi >= SAFE_HI ? Number.MAX_SAFE_INTEGER : hi * 4294967296 + u32beAt(b, o + 4);
};

const OP = 'ctnetlink entry';
/** ScannedEntry.has: which of its optional numbers the entry carried. */
export const HAS_MARK = 1;
export const HAS_TIMEOUT = 2;

/** One end of an entry: its tuple and its counters. -1 stands for "absent" where a number may be. */
export class ScannedEnd {
  /** The address attributes' value offsets in the message (IPv4: written from the bytes), or -1. */
  src = -1;
  dst = -1;
  /** Addresses other than IPv4 (IPv6), already text; null when `src`/`dst` is an offset or absent. */
  srcText: string | null = null;
  dstText: string | null = null;
  sport = -1;
  dport = -1;
  icmp = false;
  icmpType = 0;
  icmpCode = 0;
  icmpId = 0;
  zone = -1;
  counted = false;
  packets = 0;
  bytes = 0;
  saturated = false;

  resetTuple(): void {
    this.src = this.dst = -1;
    this.srcText = this.dstText = null;
    this.sport = this.dport = -1;
    this.icmp = false;
    this.zone = -1;
  }

  resetCounters(): void {
    this.counted = false;
    this.saturated = false;
  }
}

export class ScannedEntry {
  readonly orig = new ScannedEnd();
  readonly reply = new ScannedEnd();
  has = 0;
  id = 0;
  protonum = 0;
  status = 0;
  mark = 0;
  timeout = 0;
  zone = -1;
  tsStart = -1;
  tsStop = -1;
  tsEvent = -1;
  state: string | undefined;
  helper: string | undefined;
  labels: string | undefined;
  private readonly master = new ScannedEnd();

  /**
   * Gathers the entry of the ctnetlink payload `b[start, end)` (nfgenmsg, then the attributes). A DecodeError
   * counts its offset from the payload's start, wherever the payload lies in `b`.
   */
  readPayload(b: Buffer, start: number, end: number): void {
    if (end - start < 4) throw new DecodeError('truncated nfgenmsg', end - start, 'nfgenmsg');
    try {
      this.read(b, start + 4, end);
    } catch (err) {
      if (start === 0 || !(err instanceof DecodeError)) throw err;
      // Offsets here count from `b`'s start: read the payload alone again for the error with its own.
      this.read(b.subarray(start, end), 4, end - start);
      throw err;
    }
  }

  /**
   * Gathers the attributes `b[start, end)` (after nfgenmsg) of one entry. Throws DecodeError on malformed
   * input, never anything else; checks every length the reference codec checks, including attributes no
   * record keeps (master tuple, use, secmark, TCP window scale and flags).
   */
  read(b: Buffer, start: number, end: number): void {
    const orig = this.orig;
    const reply = this.reply;
    orig.resetTuple();
    orig.resetCounters();
    reply.resetTuple();
    reply.resetCounters();
    this.has = this.id = this.protonum = this.status = 0;
    this.zone = this.tsStart = this.tsStop = this.tsEvent = -1;
    this.state = this.helper = this.labels = undefined;
    for (let o = start; o < end; o = attrNext(b, o)) {
      const vEnd = attrEnd(b, o, end, OP);
      switch (attrType(b, o)) {
        case C.CTA_TUPLE_ORIG:
          this.protonum = scanTuple(b, o + 4, vEnd, orig);
          break;
        case C.CTA_TUPLE_REPLY:
          scanTuple(b, o + 4, vEnd, reply);
          break;
        case C.CTA_STATUS:
          this.status = u32beAt(b, attrNeed(o, vEnd, 4, OP));
          break;
        case C.CTA_PROTOINFO:
          this.state = tcpState(b, o + 4, vEnd);
          break;
        case C.CTA_TIMEOUT:
          this.timeout = u32beAt(b, attrNeed(o, vEnd, 4, OP));
          this.has |= HAS_TIMEOUT;
          break;
        case C.CTA_MARK:
          this.mark = u32beAt(b, attrNeed(o, vEnd, 4, OP));
          this.has |= HAS_MARK;
          break;
        case C.CTA_COUNTERS_ORIG:
          scanCounters(b, o + 4, vEnd, orig);
          break;
        case C.CTA_COUNTERS_REPLY:
          scanCounters(b, o + 4, vEnd, reply);
          break;
        case C.CTA_ID:
          this.id = u32beAt(b, attrNeed(o, vEnd, 4, OP));
          break;
        case C.CTA_USE:
        case C.CTA_SECMARK:
          attrNeed(o, vEnd, 4, OP);
          break;
        case C.CTA_ZONE:
          this.zone = u16beAt(b, attrNeed(o, vEnd, 2, OP));
          break;
        case C.CTA_TIMESTAMP:
          this.tsStart = this.tsStop = -1;
          for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
            const pEnd = attrEnd(b, p, vEnd, OP);
            const pt = attrType(b, p);
            if (pt === C.CTA_TIMESTAMP_START) this.tsStart = nsToMs(b, attrNeed(p, pEnd, 8, OP));
            else if (pt === C.CTA_TIMESTAMP_STOP) this.tsStop = nsToMs(b, attrNeed(p, pEnd, 8, OP));
          }
          break;
        case C.CTA_TUPLE_MASTER:
          // In no record, but checked as the reference codec does.
          scanTuple(b, o + 4, vEnd, this.master);
          break;
        case C.CTA_TIMESTAMP_EVENT:
          this.tsEvent = nsToMs(b, attrNeed(o, vEnd, 8, OP));
          break;
        case C.CTA_HELP:
          this.helper = undefined;
          for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
            const pEnd = attrEnd(b, p, vEnd, OP);
            if (attrType(b, p) === C.CTA_HELP_NAME) this.helper = cStringAt(b, p + 4, pEnd);
          }
          break;
        case C.CTA_LABELS:
          this.labels = b.toString('hex', o + 4, vEnd);
          break;
      }
    }
  }
}

/** A CTA_TUPLE_* value into `e` (a repeated IP or proto nest replaces the earlier one); returns the protocol number. */
function scanTuple(b: Buffer, start: number, end: number, e: ScannedEnd): number {
  e.resetTuple();
  let proto = 0;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    const t = attrType(b, o);
    if (t === C.CTA_TUPLE_IP) {
      e.src = e.dst = -1;
      e.srcText = e.dstText = null;
      for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
        const pEnd = attrEnd(b, p, vEnd, OP);
        const pt = attrType(b, p);
        const len = pEnd - p - 4;
        if (pt === C.CTA_IP_V4_SRC || pt === C.CTA_IP_V6_SRC) {
          e.src = p + 4;
          e.srcText = len === 4 ? null : ipAt(b, p + 4, len, p, OP);
        } else if (pt === C.CTA_IP_V4_DST || pt === C.CTA_IP_V6_DST) {
          e.dst = p + 4;
          e.dstText = len === 4 ? null : ipAt(b, p + 4, len, p, OP);
        }
      }
    } else if (t === C.CTA_TUPLE_PROTO) {
      proto = e.icmpType = e.icmpCode = e.icmpId = 0;
      e.icmp = false;
      e.sport = e.dport = -1;
      for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
        const pEnd = attrEnd(b, p, vEnd, OP);
        switch (attrType(b, p)) {
          case C.CTA_PROTO_NUM:
            proto = b[attrNeed(p, pEnd, 1, OP)];
            break;
          case C.CTA_PROTO_SRC_PORT:
            e.sport = u16beAt(b, attrNeed(p, pEnd, 2, OP));
            break;
          case C.CTA_PROTO_DST_PORT:
            e.dport = u16beAt(b, attrNeed(p, pEnd, 2, OP));
            break;
          case C.CTA_PROTO_ICMP_ID:
          case C.CTA_PROTO_ICMPV6_ID:
            e.icmpId = u16beAt(b, attrNeed(p, pEnd, 2, OP));
            e.icmp = true;
            break;
          case C.CTA_PROTO_ICMP_TYPE:
          case C.CTA_PROTO_ICMPV6_TYPE:
            e.icmpType = b[attrNeed(p, pEnd, 1, OP)];
            e.icmp = true;
            break;
          case C.CTA_PROTO_ICMP_CODE:
          case C.CTA_PROTO_ICMPV6_CODE:
            e.icmpCode = b[attrNeed(p, pEnd, 1, OP)];
            e.icmp = true;
            break;
        }
      }
    } else if (t === C.CTA_TUPLE_ZONE) {
      e.zone = u16beAt(b, attrNeed(o, vEnd, 2, OP));
    }
  }
  if (e.icmp) e.sport = e.dport = -1;
  return proto;
}

function scanCounters(b: Buffer, start: number, end: number, e: ScannedEnd): void {
  let packets = 0;
  let bytes = 0;
  let satP = false;
  let satB = false;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    const t = attrType(b, o);
    if (t === C.CTA_COUNTERS_PACKETS) {
      const v = attrNeed(o, vEnd, 8, OP);
      packets = u64Sat(b, v);
      satP = u32beAt(b, v) >= SAFE_HI;
    } else if (t === C.CTA_COUNTERS_BYTES) {
      const v = attrNeed(o, vEnd, 8, OP);
      bytes = u64Sat(b, v);
      satB = u32beAt(b, v) >= SAFE_HI;
    }
  }
  e.counted = true;
  e.packets = packets;
  e.bytes = bytes;
  e.saturated = satP || satB;
}

/** The TCP state of a CTA_PROTOINFO value (the last CTA_PROTOINFO_TCP's), its other attributes checked. */
function tcpState(b: Buffer, start: number, end: number): string | undefined {
  let state: string | undefined;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    if (attrType(b, o) !== C.CTA_PROTOINFO_TCP) continue;
    state = undefined; // a repeated CTA_PROTOINFO_TCP replaces the earlier one
    for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
      const pEnd = attrEnd(b, p, vEnd, OP);
      switch (attrType(b, p)) {
        case C.CTA_PROTOINFO_TCP_STATE:
          attrNeed(p, pEnd, 1, OP);
          state = C.TCP_CONNTRACK_STATES[b[p + 4]] ?? String(b[p + 4]);
          break;
        case C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL:
        case C.CTA_PROTOINFO_TCP_WSCALE_REPLY:
          attrNeed(p, pEnd, 1, OP);
          break;
        case C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL:
        case C.CTA_PROTOINFO_TCP_FLAGS_REPLY:
          attrNeed(p, pEnd, 2, OP);
          break;
      }
    }
  }
  return state;
}
