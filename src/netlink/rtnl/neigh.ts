/**
 * Neighbour messages (RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH): struct
 * ndmsg plus NDA_* attributes, decode and encode. Unlike netfilter, every
 * number here is host order (little-endian); only addresses are raw bytes.
 * The same message carries ARP/NDP entries (AF_INET/AF_INET6) and bridge
 * forwarding entries (AF_BRIDGE, the FDB).
 */
import { DecodeError } from '../../errors.js';
import { AttrReader, AttrWriter, type RawAttr } from '../attr.js';
import { parseIP } from '../ip.js';
import { AF_BRIDGE } from '../nfnetlink.js';
import type { NetlinkMessage } from '../nlmsg.js';
import * as R from './enums.js';
import { formatMac, MAX_ADDR_LEN, parseMac } from './mac.js';

/** NDA_CACHEINFO: ages in clock ticks of 1/100 s (USER_HZ), and the reference count. */
export interface NeighCacheInfo {
  confirmed: number;
  used: number;
  updated: number;
  refcnt: number;
}

export interface NeighEntry {
  /** ndm_family: AF_INET (2), AF_INET6 (10), AF_BRIDGE (7). */
  family: number;
  ifindex: number;
  /** NUD_* bits. */
  state: number;
  /** NTF_* bits. */
  flags: number;
  /** ndm_type: RTN_UNICAST (1), RTN_MULTICAST (5) … */
  type: number;
  /** NDA_DST: the protocol address (absent in bridge FDB entries). */
  dst?: string;
  /** NDA_LLADDR in colon form; "" when the device has no link-layer address. */
  lladdr?: string;
  cacheinfo?: NeighCacheInfo;
  probes?: number;
  vlan?: number;
  /** NDA_MASTER: the bridge an FDB entry belongs to. */
  master?: number;
  protocol?: number;
  flagsExt?: number;
  /** Attributes this codec does not interpret, kept for re-encoding. */
  unknown?: RawAttr[];
}

const OP = 'rtnetlink neighbour';

/** Decodes the payload of a neighbour message (ndmsg, then attributes). Throws DecodeError only. */
export function decodeNeigh(p: Buffer): NeighEntry {
  if (p.length < R.NDMSG_LEN) throw new DecodeError(`ndmsg needs ${R.NDMSG_LEN} bytes`, p.length, OP);
  const e: NeighEntry = {
    family: p[0],
    ifindex: p.readInt32LE(4),
    state: p.readUInt16LE(8),
    flags: p[10],
    type: p[11],
  };
  const r = new AttrReader(OP).reset(p, R.NDMSG_LEN);
  while (r.next()) {
    switch (r.type()) {
      case R.NDA_DST:
        e.dst = r.ip('NDA_DST');
        break;
      case R.NDA_LLADDR: {
        const len = r.len();
        if (len > MAX_ADDR_LEN) throw r.error(`NDA_LLADDR of ${len} bytes`);
        e.lladdr = formatMac(p, r.valueStart, len);
        break;
      }
      case R.NDA_CACHEINFO: {
        const v = r.need(16);
        e.cacheinfo = {
          confirmed: p.readUInt32LE(v),
          used: p.readUInt32LE(v + 4),
          updated: p.readUInt32LE(v + 8),
          refcnt: p.readUInt32LE(v + 12),
        };
        break;
      }
      case R.NDA_PROBES:
        e.probes = r.u32();
        break;
      case R.NDA_VLAN:
        e.vlan = r.u16();
        break;
      case R.NDA_MASTER:
        e.master = r.u32();
        break;
      case R.NDA_PROTOCOL:
        e.protocol = r.u8();
        break;
      case R.NDA_FLAGS_EXT:
        e.flagsExt = r.u32();
        break;
      default:
        (e.unknown ??= []).push(r.raw());
    }
  }
  return e;
}

export function encodeNdMsg(e: Pick<NeighEntry, 'family' | 'ifindex' | 'state' | 'flags' | 'type'>): Buffer {
  const b = Buffer.alloc(R.NDMSG_LEN);
  b[0] = e.family;
  b.writeInt32LE(e.ifindex, 4);
  b.writeUInt16LE(e.state, 8);
  b[10] = e.flags;
  b[11] = e.type;
  return b;
}

const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
};

/**
 * Encodes a payload the way the kernel writes it, so captured messages
 * re-encode byte for byte: neigh_fill_info's order (DST, LLADDR, PROBES,
 * CACHEINFO, PROTOCOL, FLAGS_EXT) for ARP/NDP, fdb_fill_info's (LLADDR,
 * MASTER, FLAGS_EXT, CACHEINFO, VLAN) for the bridge FDB; unknown ones last.
 */
export function encodeNeigh(e: NeighEntry): Buffer {
  const w = new AttrWriter();
  const cache = () => {
    const c = e.cacheinfo;
    if (!c) return;
    const b = Buffer.alloc(16);
    b.writeUInt32LE(c.confirmed >>> 0, 0);
    b.writeUInt32LE(c.used >>> 0, 4);
    b.writeUInt32LE(c.updated >>> 0, 8);
    b.writeUInt32LE(c.refcnt >>> 0, 12);
    w.bytes(R.NDA_CACHEINFO, b);
  };
  if (e.dst !== undefined) w.bytes(R.NDA_DST, parseIP(e.dst));
  if (e.lladdr !== undefined) w.bytes(R.NDA_LLADDR, parseMac(e.lladdr));
  if (e.family === AF_BRIDGE) {
    if (e.master !== undefined) w.u32le(R.NDA_MASTER, e.master);
    if (e.flagsExt !== undefined) w.u32le(R.NDA_FLAGS_EXT, e.flagsExt);
    cache();
    if (e.vlan !== undefined) w.bytes(R.NDA_VLAN, u16(e.vlan));
    if (e.probes !== undefined) w.u32le(R.NDA_PROBES, e.probes);
    if (e.protocol !== undefined) w.u8(R.NDA_PROTOCOL, e.protocol);
  } else {
    if (e.probes !== undefined) w.u32le(R.NDA_PROBES, e.probes);
    cache();
    if (e.protocol !== undefined) w.u8(R.NDA_PROTOCOL, e.protocol);
    if (e.flagsExt !== undefined) w.u32le(R.NDA_FLAGS_EXT, e.flagsExt);
    if (e.master !== undefined) w.u32le(R.NDA_MASTER, e.master);
    if (e.vlan !== undefined) w.bytes(R.NDA_VLAN, u16(e.vlan));
  }
  for (const a of e.unknown ?? []) w.raw(a);
  return Buffer.concat([encodeNdMsg(e), w.toBuffer()]);
}

export type NeighMessageKind = 'new' | 'delete';

/** RTM_NEWNEIGH (dump replies, creations and state changes alike) or RTM_DELNEIGH. */
export function neighMessageKind(m: { type: number }): NeighMessageKind {
  if (m.type === R.RTM_NEWNEIGH) return 'new';
  if (m.type === R.RTM_DELNEIGH) return 'delete';
  throw new DecodeError(`message type ${m.type} is not a neighbour message`, 0, OP);
}

export function decodeNeighMessage(m: NetlinkMessage): { kind: NeighMessageKind; entry: NeighEntry } {
  return { kind: neighMessageKind(m), entry: decodeNeigh(m.payload) };
}

/**
 * An RTM_GETNEIGH dump request for one family. AF_UNSPEC returns AF_INET
 * and AF_INET6 entries but not the bridge FDB, which needs AF_BRIDGE.
 */
export function neighDumpRequest(family: number): { type: number; payload: Buffer } {
  return { type: R.RTM_GETNEIGH, payload: encodeNdMsg({ family, ifindex: 0, state: 0, flags: 0, type: 0 }) };
}
