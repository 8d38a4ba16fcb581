/**
 * The hot path: ctnetlink attributes straight to a ConntrackRecord, with no
 * intermediate CtEntry, no BigInt and no bounds-checked Buffer reads; the
 * attribute walk is attr.ts's primitives (AttrReader's own) over offsets in locals. The
 * symmetric codec in src/netlink/conntrack stays the reference: a property
 * test holds this decoder equal to toConntrackRecord(decodeCtEntry(…)).
 * Attribute headers are little-endian (host), values big-endian.
 */
import { DecodeError } from '../../errors.js';
import { attrEnd, attrNeed, attrNext, attrType, cStringAt, ipAt, u16beAt, u32beAt } from '../../netlink/attr.js';
import * as C from '../../netlink/conntrack/enums.js';
import { ctKind } from '../../netlink/conntrack/messages.js';
import type { NetlinkMessage } from '../../netlink/nlmsg.js';
import type { ConntrackEnd, ConntrackRecord, ConntrackRecordType } from './record.js';
import { statusNames } from './status.js';

const OP = 'ctnetlink entry';
// The attribute walk is attr.ts's (attrEnd, attrNext, attrType, attrNeed), over offsets kept in locals.
/** u64 BE nanoseconds → whole ms, exactly: hi·2^32 = hi·4294·10^6 + hi·967296. */
export const nsToMs = (b: Buffer, o: number): number => {
  const hi = u32beAt(b, o);
  return hi * 4294 + Math.floor((hi * 967296 + u32beAt(b, o + 4)) / 1e6);
};

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

const addr = (b: Buffer, o: number, vEnd: number) => ipAt(b, o + 4, vEnd - o - 4, o, OP);

/**
 * Fills `e` from a CTA_TUPLE_* value; returns the protocol number. Repeated
 * attributes follow nla_parse, as the reference codec does: the last wins,
 * and a repeated nest (the tuple itself, its IP or proto part) replaces its
 * predecessor as a whole.
 */
function tuple(b: Buffer, start: number, end: number, e: ConntrackEnd): number {
  e.src = '';
  e.dst = '';
  e.sport = undefined;
  e.dport = undefined;
  if (e.icmp !== undefined) delete e.icmp;
  if (e.zone !== undefined) delete e.zone;
  let proto = 0;
  let icmpSeen = false;
  let type = 0;
  let code = 0;
  let id = 0;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    const t = attrType(b, o);
    if (t === C.CTA_TUPLE_IP) {
      e.src = '';
      e.dst = '';
      for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
        const pEnd = attrEnd(b, p, vEnd, OP);
        const pt = attrType(b, p);
        if (pt === C.CTA_IP_V4_SRC || pt === C.CTA_IP_V6_SRC) e.src = addr(b, p, pEnd);
        else if (pt === C.CTA_IP_V4_DST || pt === C.CTA_IP_V6_DST) e.dst = addr(b, p, pEnd);
      }
    } else if (t === C.CTA_TUPLE_PROTO) {
      proto = type = code = id = 0;
      icmpSeen = false;
      e.sport = undefined;
      e.dport = undefined;
      for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
        const pEnd = attrEnd(b, p, vEnd, OP);
        switch (attrType(b, p)) {
          case C.CTA_PROTO_NUM:
            attrNeed(p, pEnd, 1, OP);
            proto = b[p + 4];
            break;
          case C.CTA_PROTO_SRC_PORT:
            attrNeed(p, pEnd, 2, OP);
            e.sport = u16beAt(b, p + 4);
            break;
          case C.CTA_PROTO_DST_PORT:
            attrNeed(p, pEnd, 2, OP);
            e.dport = u16beAt(b, p + 4);
            break;
          case C.CTA_PROTO_ICMP_ID:
          case C.CTA_PROTO_ICMPV6_ID:
            attrNeed(p, pEnd, 2, OP);
            id = u16beAt(b, p + 4);
            icmpSeen = true;
            break;
          case C.CTA_PROTO_ICMP_TYPE:
          case C.CTA_PROTO_ICMPV6_TYPE:
            attrNeed(p, pEnd, 1, OP);
            type = b[p + 4];
            icmpSeen = true;
            break;
          case C.CTA_PROTO_ICMP_CODE:
          case C.CTA_PROTO_ICMPV6_CODE:
            attrNeed(p, pEnd, 1, OP);
            code = b[p + 4];
            icmpSeen = true;
            break;
        }
      }
    } else if (t === C.CTA_TUPLE_ZONE) {
      attrNeed(o, vEnd, 2, OP);
      e.zone = u16beAt(b, o + 4);
    }
  }
  if (icmpSeen) {
    e.icmp = { type, code, id };
    e.sport = undefined;
    e.dport = undefined;
  }
  return proto;
}

export const SAFE_HI = 0x20_0000; // a u64 whose high word reaches 2^21 is ≥ 2^53
/** u64 BE counter as a number, exact below 2^53; above, saturated at 2^53 - 1 (`saturated` says so). */
export const u64Sat = (b: Buffer, o: number): number => {
  const hi = u32beAt(b, o);
  return hi >= SAFE_HI ? Number.MAX_SAFE_INTEGER : hi * 4294967296 + u32beAt(b, o + 4);
};

function counters(b: Buffer, start: number, end: number, e: ConntrackEnd): void {
  let packets = 0;
  let bytes = 0;
  let satP = false;
  let satB = false;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    const t = attrType(b, o);
    if (t === C.CTA_COUNTERS_PACKETS) {
      attrNeed(o, vEnd, 8, OP);
      packets = u64Sat(b, o + 4);
      satP = u32beAt(b, o + 4) >= SAFE_HI;
    } else if (t === C.CTA_COUNTERS_BYTES) {
      attrNeed(o, vEnd, 8, OP);
      bytes = u64Sat(b, o + 4);
      satB = u32beAt(b, o + 4) >= SAFE_HI;
    }
  }
  e.packets = packets;
  e.bytes = bytes;
  if (satP || satB) e.saturated = true;
  else if (e.saturated !== undefined) delete e.saturated;
}

/**
 * Decodes the attributes after nfgenmsg (`start`…`end`) into a record.
 * Throws DecodeError on malformed input, never anything else; checks every
 * length the reference codec checks, including attributes it then drops
 * (master tuple, use, secmark, TCP window scale and flags).
 */
export function decodeConntrackRecord(
  b: Buffer,
  start: number,
  end: number,
  family: number,
  type: ConntrackRecordType,
  now: number,
  netns?: string,
): ConntrackRecord {
  // Every field is assigned up front so all records share one hidden class.
  const orig: ConntrackEnd = { src: '', dst: '', sport: undefined, dport: undefined };
  const reply: ConntrackEnd = { src: '', dst: '', sport: undefined, dport: undefined };
  const r: ConntrackRecord = {
    type,
    id: 0,
    family: family === 10 ? 'ipv6' : 'ipv4',
    proto: '0',
    protonum: 0,
    orig,
    reply,
    status: statusList(0),
    ts: now,
  };
  let protonum = 0;
  let helper: string | undefined;
  let tsStart: number | undefined;
  let tsStop: number | undefined;
  for (let o = start; o < end; o = attrNext(b, o)) {
    const vEnd = attrEnd(b, o, end, OP);
    switch (attrType(b, o)) {
      case C.CTA_TUPLE_ORIG:
        protonum = tuple(b, o + 4, vEnd, orig);
        break;
      case C.CTA_TUPLE_REPLY:
        tuple(b, o + 4, vEnd, reply);
        break;
      case C.CTA_TUPLE_MASTER:
        // Not in the record, but validated as the reference codec does.
        tuple(b, o + 4, vEnd, { src: '', dst: '' });
        break;
      case C.CTA_STATUS:
        attrNeed(o, vEnd, 4, OP);
        r.status = statusList(u32beAt(b, o + 4));
        break;
      case C.CTA_PROTOINFO:
        r.state = tcpState(b, o + 4, vEnd);
        if (r.state === undefined) delete r.state;
        break;
      case C.CTA_TIMEOUT:
        attrNeed(o, vEnd, 4, OP);
        r.timeout = u32beAt(b, o + 4);
        break;
      case C.CTA_MARK:
        attrNeed(o, vEnd, 4, OP);
        r.mark = u32beAt(b, o + 4);
        break;
      case C.CTA_COUNTERS_ORIG:
        counters(b, o + 4, vEnd, orig);
        break;
      case C.CTA_COUNTERS_REPLY:
        counters(b, o + 4, vEnd, reply);
        break;
      case C.CTA_ID:
        attrNeed(o, vEnd, 4, OP);
        r.id = u32beAt(b, o + 4);
        break;
      case C.CTA_USE:
      case C.CTA_SECMARK:
        attrNeed(o, vEnd, 4, OP);
        break;
      case C.CTA_ZONE:
        attrNeed(o, vEnd, 2, OP);
        r.zone = u16beAt(b, o + 4);
        break;
      case C.CTA_TIMESTAMP:
        tsStart = tsStop = undefined;
        for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
          const pEnd = attrEnd(b, p, vEnd, OP);
          const pt = attrType(b, p);
          if (pt !== C.CTA_TIMESTAMP_START && pt !== C.CTA_TIMESTAMP_STOP) continue;
          attrNeed(p, pEnd, 8, OP);
          if (pt === C.CTA_TIMESTAMP_START) tsStart = nsToMs(b, p + 4);
          else tsStop = nsToMs(b, p + 4);
        }
        break;
      case C.CTA_TIMESTAMP_EVENT:
        attrNeed(o, vEnd, 8, OP);
        r.ts = nsToMs(b, o + 4);
        break;
      case C.CTA_HELP:
        helper = undefined;
        for (let p = o + 4; p < vEnd; p = attrNext(b, p)) {
          const pEnd = attrEnd(b, p, vEnd, OP);
          if (attrType(b, p) === C.CTA_HELP_NAME) helper = cStringAt(b, p + 4, pEnd);
        }
        break;
      case C.CTA_LABELS:
        r.labels = b.toString('hex', o + 4, vEnd);
        break;
    }
  }
  r.protonum = protonum;
  r.proto = C.PROTO_NAMES[protonum] ?? String(protonum);
  if (tsStart !== undefined) r.start = tsStart;
  if (tsStop !== undefined) r.stop = tsStop;
  if (helper !== undefined) r.helper = helper;
  dropPorts(orig);
  dropPorts(reply);
  if (netns !== undefined) r.netns = netns;
  return r;
}

/** ICMP and port-less protocols: no port keys at all, as in the reference decoder. */
function dropPorts(e: ConntrackEnd): void {
  if (e.sport === undefined) delete e.sport;
  if (e.dport === undefined) delete e.dport;
}

export function tcpState(b: Buffer, start: number, end: number): string | undefined {
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

/** A whole ctnetlink message (nfgenmsg + attributes) to a record. */
export function conntrackRecordFromMessage(m: NetlinkMessage, now: number, netns?: string): ConntrackRecord {
  return conntrackRecordAt(m.payload, 0, m.payload.length, m.type, m.flags, now, netns);
}

/**
 * A ctnetlink message read in place: its payload (nfgenmsg + attributes) is
 * `b[start, end)`, its header's type and flags given. A DecodeError counts
 * its offset from the payload's start, as conntrackRecordFromMessage's does.
 */
export function conntrackRecordAt(
  b: Buffer,
  start: number,
  end: number,
  msgType: number,
  flags: number,
  now: number,
  netns?: string,
): ConntrackRecord {
  const type = ctKind(msgType, flags);
  if (end - start < 4) throw new DecodeError('truncated nfgenmsg', end - start, 'nfgenmsg');
  try {
    return decodeConntrackRecord(b, start + 4, end, b[start], type, now, netns);
  } catch (err) {
    // Offsets here count from `b`'s start: decode the payload alone again for the error with its own.
    if (start === 0 || !(err instanceof DecodeError)) throw err;
    return decodeConntrackRecord(b.subarray(start, end), 4, end - start, b[start], type, now, netns);
  }
}
