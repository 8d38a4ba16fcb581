/**
 * Link messages (RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK): struct ifinfomsg
 * plus the IFLA_* attributes flowgrab needs to name interfaces and find
 * bridge ports; everything else is kept raw. Host byte order throughout.
 * A link carries dozens of attributes interleaved in the kernel's own order,
 * so re-encoding preserves every value but not that order.
 */
import { DecodeError } from '../../errors.js';
import { AttrReader, AttrWriter, type RawAttr } from '../attr.js';
import { AF_UNSPEC } from '../nfnetlink.js';
import type { NetlinkMessage } from '../nlmsg.js';
import * as R from './enums.js';
import { formatMac, MAX_ADDR_LEN, parseMac } from './mac.js';

export interface LinkInfo {
  /** IFLA_INFO_KIND: "bridge", "veth", "dummy" … */
  kind?: string;
  /** IFLA_INFO_SLAVE_KIND: "bridge" for a bridge port. */
  slaveKind?: string;
  unknown?: RawAttr[];
}

export interface LinkEntry {
  /** ifi_family: AF_UNSPEC, or AF_BRIDGE for bridge-port notifications. */
  family: number;
  /** ifi_type: ARPHRD_*. */
  type: number;
  index: number;
  /** IFF_* bits. */
  flags: number;
  change: number;
  name?: string;
  /** IFLA_ADDRESS in colon form. */
  mac?: string;
  broadcast?: string;
  mtu?: number;
  /** IFLA_MASTER: the bridge (or bond) this link is enslaved to. */
  master?: number;
  operstate?: number;
  linkInfo?: LinkInfo;
  unknown?: RawAttr[];
}

const OP = 'rtnetlink link';

function mac(r: AttrReader): string {
  const len = r.len();
  if (len > MAX_ADDR_LEN) throw r.error(`link-layer address of ${len} bytes`);
  return formatMac(r.buffer, r.valueStart, len);
}

function decodeLinkInfo(r: AttrReader): LinkInfo {
  const li: LinkInfo = {};
  while (r.next()) {
    const t = r.type();
    if (t === R.IFLA_INFO_KIND) li.kind = r.string();
    else if (t === R.IFLA_INFO_SLAVE_KIND) li.slaveKind = r.string();
    else (li.unknown ??= []).push(r.raw());
  }
  return li;
}

/** Decodes the payload of a link message (ifinfomsg, then attributes). Throws DecodeError only. */
export function decodeLink(p: Buffer): LinkEntry {
  if (p.length < R.IFINFOMSG_LEN) throw new DecodeError(`ifinfomsg needs ${R.IFINFOMSG_LEN} bytes`, p.length, OP);
  const e: LinkEntry = {
    family: p[0],
    type: p.readUInt16LE(2),
    index: p.readInt32LE(4),
    flags: p.readUInt32LE(8),
    change: p.readUInt32LE(12),
  };
  const r = new AttrReader(OP).reset(p, R.IFINFOMSG_LEN);
  while (r.next()) {
    switch (r.type()) {
      case R.IFLA_IFNAME:
        e.name = r.string();
        break;
      case R.IFLA_ADDRESS:
        e.mac = mac(r);
        break;
      case R.IFLA_BROADCAST:
        e.broadcast = mac(r);
        break;
      case R.IFLA_MTU:
        e.mtu = r.u32();
        break;
      case R.IFLA_MASTER:
        e.master = r.u32();
        break;
      case R.IFLA_OPERSTATE:
        e.operstate = r.u8();
        break;
      case R.IFLA_LINKINFO:
        e.linkInfo = decodeLinkInfo(r.nested());
        break;
      default:
        (e.unknown ??= []).push(r.raw());
    }
  }
  return e;
}

export function encodeIfInfoMsg(e: Pick<LinkEntry, 'family' | 'type' | 'index' | 'flags' | 'change'>): Buffer {
  const b = Buffer.alloc(R.IFINFOMSG_LEN);
  b[0] = e.family;
  b.writeUInt16LE(e.type, 2);
  b.writeInt32LE(e.index, 4);
  b.writeUInt32LE(e.flags >>> 0, 8);
  b.writeUInt32LE(e.change >>> 0, 12);
  return b;
}

/** Encodes a link payload: every interpreted value, then the kept attributes. */
export function encodeLink(e: LinkEntry): Buffer {
  const w = new AttrWriter();
  if (e.name !== undefined) w.string(R.IFLA_IFNAME, e.name);
  if (e.operstate !== undefined) w.u8(R.IFLA_OPERSTATE, e.operstate);
  if (e.mtu !== undefined) w.u32le(R.IFLA_MTU, e.mtu);
  if (e.master !== undefined) w.u32le(R.IFLA_MASTER, e.master);
  const li = e.linkInfo;
  if (li) {
    w.nest(R.IFLA_LINKINFO, (n) => {
      if (li.kind !== undefined) n.string(R.IFLA_INFO_KIND, li.kind);
      if (li.slaveKind !== undefined) n.string(R.IFLA_INFO_SLAVE_KIND, li.slaveKind);
      for (const a of li.unknown ?? []) n.raw(a);
    });
  }
  if (e.mac !== undefined) w.bytes(R.IFLA_ADDRESS, parseMac(e.mac));
  if (e.broadcast !== undefined) w.bytes(R.IFLA_BROADCAST, parseMac(e.broadcast));
  for (const a of e.unknown ?? []) w.raw(a);
  return Buffer.concat([encodeIfInfoMsg(e), w.toBuffer()]);
}

export type LinkMessageKind = 'new' | 'delete';

export function decodeLinkMessage(m: NetlinkMessage): { kind: LinkMessageKind; entry: LinkEntry } {
  if (m.type !== R.RTM_NEWLINK && m.type !== R.RTM_DELLINK) {
    throw new DecodeError(`message type ${m.type} is not a link message`, 0, OP);
  }
  return { kind: m.type === R.RTM_NEWLINK ? 'new' : 'delete', entry: decodeLink(m.payload) };
}

/**
 * An RTM_GETLINK dump of every link. (IFLA_EXT_MASK's RTEXT_FILTER_SKIP_STATS
 * would not help: it skips VF statistics only, IFLA_STATS64 still comes.)
 */
export function linkDumpRequest(): { type: number; payload: Buffer } {
  return {
    type: R.RTM_GETLINK,
    payload: encodeIfInfoMsg({ family: AF_UNSPEC, type: 0, index: 0, flags: 0, change: 0 }),
  };
}
