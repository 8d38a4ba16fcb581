/**
 * A conntrack entry as ctnetlink carries it: decode from and encode to the
 * attribute list after nfgenmsg. Field names follow the kernel; the friendly
 * ConntrackRecord is built from this in src/sources/conntrack.
 */
import { AttrReader, AttrWriter, type RawAttr } from '../attr.js';
import * as C from './enums.js';
import { type CtTuple, decodeTuple, encodeTuple } from './tuple.js';

/** u64 counters, exact (they can pass 2^53 on long-lived, busy flows). */
export interface CtCounters {
  packets: bigint;
  bytes: bigint;
}

export interface CtTcpFlags {
  flags: number;
  mask: number;
}

export interface CtTcpInfo {
  /** Absent when the kernel (or a forger) sent CTA_PROTOINFO_TCP without a state. */
  state?: number;
  wscaleOrig?: number;
  wscaleReply?: number;
  flagsOrig?: CtTcpFlags;
  flagsReply?: CtTcpFlags;
}

export interface CtEntry {
  /** nfgenmsg family: AF_INET (2) or AF_INET6 (10). */
  family: number;
  orig?: CtTuple;
  reply?: CtTuple;
  master?: CtTuple;
  status?: number;
  tcp?: CtTcpInfo;
  /** Protocol info of other protocols (DCCP, SCTP), kept raw. */
  protoinfoRaw?: RawAttr[];
  helper?: string;
  timeout?: number;
  mark?: number;
  countersOrig?: CtCounters;
  countersReply?: CtCounters;
  use?: number;
  id?: number;
  secmark?: number;
  zone?: number;
  /** Nanoseconds since the epoch (exceeds 2^53, hence bigint). */
  timestampStart?: bigint;
  timestampStop?: bigint;
  timestampEvent?: bigint;
  labels?: Buffer;
  unknown?: RawAttr[];
}

const OP = 'ctnetlink entry';

/*
 * Repeated attributes follow the kernel's nla_parse: the last one of a type
 * wins, and a nested attribute replaces its predecessor as a whole. The fast
 * decoder in src/sources/conntrack/decode.ts follows the same rules, and a
 * differential property test holds the two equal on any input.
 */

function decodeCounters(r: AttrReader): CtCounters {
  const c: CtCounters = { packets: 0n, bytes: 0n };
  while (r.next()) {
    const t = r.type();
    if (t === C.CTA_COUNTERS_PACKETS) c.packets = r.u64beBig();
    else if (t === C.CTA_COUNTERS_BYTES) c.bytes = r.u64beBig();
  }
  return c;
}

function decodeTimestamp(e: CtEntry, r: AttrReader): void {
  e.timestampStart = undefined;
  e.timestampStop = undefined;
  while (r.next()) {
    const t = r.type();
    if (t === C.CTA_TIMESTAMP_START) e.timestampStart = r.u64beBig();
    else if (t === C.CTA_TIMESTAMP_STOP) e.timestampStop = r.u64beBig();
  }
}

function tcpFlags(r: AttrReader): CtTcpFlags {
  const v = r.need(2, 'nf_ct_tcp_flags');
  return { flags: r.buffer[v], mask: r.buffer[v + 1] };
}

function decodeProtoinfo(e: CtEntry, r: AttrReader): void {
  e.tcp = undefined;
  e.protoinfoRaw = undefined;
  const p = new AttrReader(OP);
  while (r.next()) {
    if (r.type() !== C.CTA_PROTOINFO_TCP) {
      (e.protoinfoRaw ??= []).push(r.raw());
      continue;
    }
    const tcp: CtTcpInfo = {};
    r.nested(p);
    while (p.next()) {
      switch (p.type()) {
        case C.CTA_PROTOINFO_TCP_STATE:
          tcp.state = p.u8();
          break;
        case C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL:
          tcp.wscaleOrig = p.u8();
          break;
        case C.CTA_PROTOINFO_TCP_WSCALE_REPLY:
          tcp.wscaleReply = p.u8();
          break;
        case C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL:
          tcp.flagsOrig = tcpFlags(p);
          break;
        case C.CTA_PROTOINFO_TCP_FLAGS_REPLY:
          tcp.flagsReply = tcpFlags(p);
          break;
      }
    }
    e.tcp = tcp;
  }
}

function decodeHelp(r: AttrReader): string | undefined {
  let name: string | undefined;
  while (r.next()) if (r.type() === C.CTA_HELP_NAME) name = r.string();
  return name;
}

/**
 * Decodes the attributes of one ctnetlink message (`start` = just after
 * nfgenmsg). Throws DecodeError on malformed input; never anything else.
 */
export function decodeCtEntry(buf: Buffer, start: number, end: number, family: number): CtEntry {
  const e: CtEntry = { family };
  const r = new AttrReader(OP).reset(buf, start, end);
  const inner = new AttrReader(OP);
  while (r.next()) {
    switch (r.type()) {
      case C.CTA_TUPLE_ORIG:
        e.orig = decodeTuple(r);
        break;
      case C.CTA_TUPLE_REPLY:
        e.reply = decodeTuple(r);
        break;
      case C.CTA_TUPLE_MASTER:
        e.master = decodeTuple(r);
        break;
      case C.CTA_STATUS:
        e.status = r.u32be();
        break;
      case C.CTA_PROTOINFO:
        decodeProtoinfo(e, r.nested(inner));
        break;
      case C.CTA_HELP:
        e.helper = decodeHelp(r.nested(inner));
        break;
      case C.CTA_TIMEOUT:
        e.timeout = r.u32be();
        break;
      case C.CTA_MARK:
        e.mark = r.u32be();
        break;
      case C.CTA_COUNTERS_ORIG:
        e.countersOrig = decodeCounters(r.nested(inner));
        break;
      case C.CTA_COUNTERS_REPLY:
        e.countersReply = decodeCounters(r.nested(inner));
        break;
      case C.CTA_USE:
        e.use = r.u32be();
        break;
      case C.CTA_ID:
        e.id = r.u32be();
        break;
      case C.CTA_SECMARK:
        e.secmark = r.u32be();
        break;
      case C.CTA_ZONE:
        e.zone = r.u16be();
        break;
      case C.CTA_TIMESTAMP:
        decodeTimestamp(e, r.nested(inner));
        break;
      case C.CTA_TIMESTAMP_EVENT:
        e.timestampEvent = r.u64beBig();
        break;
      case C.CTA_LABELS:
        e.labels = r.bytes();
        break;
      default:
        (e.unknown ??= []).push(r.raw());
    }
  }
  return e;
}

const counters = (w: AttrWriter, type: number, c: CtCounters) =>
  w.nest(type, (n) => n.u64be(C.CTA_COUNTERS_PACKETS, c.packets).u64be(C.CTA_COUNTERS_BYTES, c.bytes));

/**
 * Encodes an entry's attributes in the order the kernel's ctnetlink_fill_info
 * writes them (tuples, zone, status, mark, id, use, master, timeout,
 * protoinfo, helper, labels, counters, timestamp), so dumps re-encode byte for byte.
 */
export function encodeCtEntry(e: CtEntry, w = new AttrWriter()): AttrWriter {
  if (e.orig) w.nest(C.CTA_TUPLE_ORIG, (n) => encodeTuple(n, e.orig!));
  if (e.reply) w.nest(C.CTA_TUPLE_REPLY, (n) => encodeTuple(n, e.reply!));
  if (e.zone !== undefined) w.u16be(C.CTA_ZONE, e.zone);
  if (e.status !== undefined) w.u32be(C.CTA_STATUS, e.status);
  if (e.mark !== undefined) w.u32be(C.CTA_MARK, e.mark);
  if (e.secmark !== undefined) w.u32be(C.CTA_SECMARK, e.secmark);
  if (e.id !== undefined) w.u32be(C.CTA_ID, e.id);
  if (e.use !== undefined) w.u32be(C.CTA_USE, e.use);
  if (e.master) w.nest(C.CTA_TUPLE_MASTER, (n) => encodeTuple(n, e.master!));
  if (e.timeout !== undefined) w.u32be(C.CTA_TIMEOUT, e.timeout);
  if (e.tcp || e.protoinfoRaw) w.nest(C.CTA_PROTOINFO, (p) => encodeProtoinfo(p, e));
  if (e.helper !== undefined) w.nest(C.CTA_HELP, (h) => h.string(C.CTA_HELP_NAME, e.helper!));
  if (e.labels) w.bytes(C.CTA_LABELS, e.labels);
  if (e.countersOrig) counters(w, C.CTA_COUNTERS_ORIG, e.countersOrig);
  if (e.countersReply) counters(w, C.CTA_COUNTERS_REPLY, e.countersReply);
  if (e.timestampStart !== undefined || e.timestampStop !== undefined) {
    w.nest(C.CTA_TIMESTAMP, (t) => {
      if (e.timestampStart !== undefined) t.u64be(C.CTA_TIMESTAMP_START, e.timestampStart);
      if (e.timestampStop !== undefined) t.u64be(C.CTA_TIMESTAMP_STOP, e.timestampStop);
    });
  }
  if (e.timestampEvent !== undefined) w.u64be(C.CTA_TIMESTAMP_EVENT, e.timestampEvent);
  for (const a of e.unknown ?? []) w.raw(a);
  return w;
}

function encodeProtoinfo(p: AttrWriter, e: CtEntry): void {
  const tcp = e.tcp;
  if (tcp) {
    p.nest(C.CTA_PROTOINFO_TCP, (t) => {
      if (tcp.state !== undefined) t.u8(C.CTA_PROTOINFO_TCP_STATE, tcp.state);
      if (tcp.wscaleOrig !== undefined) t.u8(C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, tcp.wscaleOrig);
      if (tcp.wscaleReply !== undefined) t.u8(C.CTA_PROTOINFO_TCP_WSCALE_REPLY, tcp.wscaleReply);
      if (tcp.flagsOrig)
        t.bytes(C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, Buffer.from([tcp.flagsOrig.flags, tcp.flagsOrig.mask]));
      if (tcp.flagsReply)
        t.bytes(C.CTA_PROTOINFO_TCP_FLAGS_REPLY, Buffer.from([tcp.flagsReply.flags, tcp.flagsReply.mask]));
    });
  }
  for (const a of e.protoinfoRaw ?? []) p.raw(a);
}
