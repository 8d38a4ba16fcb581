/** CTA_TUPLE_* codec: addresses, protocol, ports or ICMP id/type/code, tuple zone. */
import { AttrReader, type AttrWriter, type RawAttr } from '../attr.js';
import { parseIP } from '../ip.js';
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

function decodeIp(t: CtTuple, r: AttrReader): void {
  while (r.next()) {
    switch (r.type()) {
      case CTA_IP_V4_SRC:
      case CTA_IP_V6_SRC:
        t.src = r.ip();
        break;
      case CTA_IP_V4_DST:
      case CTA_IP_V6_DST:
        t.dst = r.ip();
        break;
      default:
        (t.unknownIp ??= []).push(r.raw());
    }
  }
}

function decodeProto(t: CtTuple, r: AttrReader): void {
  while (r.next()) {
    switch (r.type()) {
      case CTA_PROTO_NUM:
        t.protonum = r.u8();
        break;
      case CTA_PROTO_SRC_PORT:
        t.sport = r.u16be();
        break;
      case CTA_PROTO_DST_PORT:
        t.dport = r.u16be();
        break;
      case CTA_PROTO_ICMP_ID:
      case CTA_PROTO_ICMPV6_ID:
        (t.icmp ??= { type: 0, code: 0, id: 0 }).id = r.u16be();
        break;
      case CTA_PROTO_ICMP_TYPE:
      case CTA_PROTO_ICMPV6_TYPE:
        (t.icmp ??= { type: 0, code: 0, id: 0 }).type = r.u8();
        break;
      case CTA_PROTO_ICMP_CODE:
      case CTA_PROTO_ICMPV6_CODE:
        (t.icmp ??= { type: 0, code: 0, id: 0 }).code = r.u8();
        break;
      default:
        (t.unknownProto ??= []).push(r.raw());
    }
  }
}

/** Decodes the value of a CTA_TUPLE_{ORIG,REPLY,MASTER} attribute (`r` positioned on it). */
export function decodeTuple(r: AttrReader): CtTuple {
  const t: CtTuple = { src: '', dst: '', protonum: 0 };
  const inner = r.nested(new AttrReader(OP));
  const leaf = new AttrReader(OP);
  while (inner.next()) {
    switch (inner.type()) {
      case CTA_TUPLE_IP:
        // A repeated nest replaces its predecessor (nla_parse keeps the last).
        t.src = '';
        t.dst = '';
        t.unknownIp = undefined;
        decodeIp(t, inner.nested(leaf));
        break;
      case CTA_TUPLE_PROTO:
        t.protonum = 0;
        t.sport = t.dport = t.icmp = t.unknownProto = undefined;
        decodeProto(t, inner.nested(leaf));
        break;
      case CTA_TUPLE_ZONE:
        t.zone = inner.u16be();
        break;
      default:
        (t.unknown ??= []).push(inner.raw());
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
