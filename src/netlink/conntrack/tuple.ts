/** CTA_TUPLE_* codec: addresses, protocol, ports or ICMP id/type/code, tuple zone. */
import { DecodeError } from '../../errors.js';
import { type AttrWriter, attrNested, attrType, attrValueEnd, beU8, beU16, nextAttr, type RawAttr } from '../attr.js';
import { NLA_HDRLEN } from '../enums.js';
import { formatIP, parseIP } from '../ip.js';
import {
  CTA_IP_V4_DST,
  CTA_IP_V4_SRC,
  CTA_IP_V6_DST,
  CTA_IP_V6_SRC,
  CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_CODE,
  CTA_PROTO_ICMP_ID,
  CTA_PROTO_ICMP_TYPE,
  CTA_PROTO_ICMPV6_CODE,
  CTA_PROTO_ICMPV6_ID,
  CTA_PROTO_ICMPV6_TYPE,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
  CTA_TUPLE_IP,
  CTA_TUPLE_PROTO,
  CTA_TUPLE_ZONE,
  IPPROTO_ICMPV6,
} from './enums.js';

export interface CtIcmp {
  type: number;
  code: number;
  id: number;
}

export interface CtTuple {
  src: string;
  dst: string;
  protonum: number;
  sport?: number;
  dport?: number;
  icmp?: CtIcmp;
  zone?: number;
  /** Attributes this codec does not interpret, kept for re-encoding, per nesting level. */
  unknown?: RawAttr[];
  unknownIp?: RawAttr[];
  unknownProto?: RawAttr[];
}

const OP = 'ctnetlink tuple';

type Level = 'unknown' | 'unknownIp' | 'unknownProto';
function keep(t: CtTuple, level: Level, buf: Buffer, o: number, vEnd: number): void {
  const raw = { type: attrType(buf, o), nested: attrNested(buf, o), value: buf.subarray(o + NLA_HDRLEN, vEnd) };
  (t[level] ??= []).push(raw);
}

function decodeIp(t: CtTuple, buf: Buffer, start: number, end: number): void {
  for (let o = start; o < end; o = nextAttr(buf, o)) {
    const vEnd = attrValueEnd(buf, o, end, OP);
    const len = vEnd - o - NLA_HDRLEN;
    switch (attrType(buf, o)) {
      case CTA_IP_V4_SRC:
      case CTA_IP_V6_SRC:
        if (len !== 4 && len !== 16) throw new DecodeError(`address of ${len} bytes`, o, OP);
        t.src = formatIP(buf, o + NLA_HDRLEN, len);
        break;
      case CTA_IP_V4_DST:
      case CTA_IP_V6_DST:
        if (len !== 4 && len !== 16) throw new DecodeError(`address of ${len} bytes`, o, OP);
        t.dst = formatIP(buf, o + NLA_HDRLEN, len);
        break;
      default:
        keep(t, 'unknownIp', buf, o, vEnd);
    }
  }
}

function decodeProto(t: CtTuple, buf: Buffer, start: number, end: number): void {
  for (let o = start; o < end; o = nextAttr(buf, o)) {
    const vEnd = attrValueEnd(buf, o, end, OP);
    switch (attrType(buf, o)) {
      case CTA_PROTO_NUM:
        t.protonum = beU8(buf, o, vEnd, OP);
        break;
      case CTA_PROTO_SRC_PORT:
        t.sport = beU16(buf, o, vEnd, OP);
        break;
      case CTA_PROTO_DST_PORT:
        t.dport = beU16(buf, o, vEnd, OP);
        break;
      case CTA_PROTO_ICMP_ID:
      case CTA_PROTO_ICMPV6_ID:
        (t.icmp ??= { type: 0, code: 0, id: 0 }).id = beU16(buf, o, vEnd, OP);
        break;
      case CTA_PROTO_ICMP_TYPE:
      case CTA_PROTO_ICMPV6_TYPE:
        (t.icmp ??= { type: 0, code: 0, id: 0 }).type = beU8(buf, o, vEnd, OP);
        break;
      case CTA_PROTO_ICMP_CODE:
      case CTA_PROTO_ICMPV6_CODE:
        (t.icmp ??= { type: 0, code: 0, id: 0 }).code = beU8(buf, o, vEnd, OP);
        break;
      default:
        keep(t, 'unknownProto', buf, o, vEnd);
    }
  }
}

/** Decodes the value of a CTA_TUPLE_{ORIG,REPLY,MASTER} attribute. */
export function decodeTuple(buf: Buffer, start: number, end: number): CtTuple {
  const t: CtTuple = { src: '', dst: '', protonum: 0 };
  for (let o = start; o < end; o = nextAttr(buf, o)) {
    const vEnd = attrValueEnd(buf, o, end, OP);
    switch (attrType(buf, o)) {
      case CTA_TUPLE_IP:
        // A repeated nest replaces its predecessor (nla_parse keeps the last).
        t.src = '';
        t.dst = '';
        t.unknownIp = undefined;
        decodeIp(t, buf, o + NLA_HDRLEN, vEnd);
        break;
      case CTA_TUPLE_PROTO:
        t.protonum = 0;
        t.sport = t.dport = t.icmp = t.unknownProto = undefined;
        decodeProto(t, buf, o + NLA_HDRLEN, vEnd);
        break;
      case CTA_TUPLE_ZONE:
        t.zone = beU16(buf, o, vEnd, OP);
        break;
      default:
        keep(t, 'unknown', buf, o, vEnd);
    }
  }
  return t;
}

export function encodeTuple(w: AttrWriter, t: CtTuple): void {
  w.nest(CTA_TUPLE_IP, (ip) => {
    const src = parseIP(t.src);
    const dst = parseIP(t.dst);
    ip.bytes(src.length === 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, src);
    ip.bytes(dst.length === 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, dst);
    for (const a of t.unknownIp ?? []) ip.raw(a);
  });
  w.nest(CTA_TUPLE_PROTO, (p) => {
    p.u8(CTA_PROTO_NUM, t.protonum);
    if (t.sport !== undefined) p.u16be(CTA_PROTO_SRC_PORT, t.sport);
    if (t.dport !== undefined) p.u16be(CTA_PROTO_DST_PORT, t.dport);
    if (t.icmp) {
      const v6 = t.protonum === IPPROTO_ICMPV6;
      // The kernel's order: id, type, code.
      p.u16be(v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID, t.icmp.id);
      p.u8(v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE, t.icmp.type);
      p.u8(v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE, t.icmp.code);
    }
    for (const a of t.unknownProto ?? []) p.raw(a);
  });
  if (t.zone !== undefined) w.u16be(CTA_TUPLE_ZONE, t.zone);
  for (const a of t.unknown ?? []) w.raw(a);
}
