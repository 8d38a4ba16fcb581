/** ctnetlink messages: classify events, build dump / get / delete requests. */
import { DecodeError } from '../../errors.js';
import { AttrWriter } from '../attr.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_MULTI } from '../enums.js';
import {
  decodeNfGenMsg,
  NFGENMSG_LEN,
  NFNL_SUBSYS_CTNETLINK,
  nfMsg,
  nfPayload,
  nfSubsys,
  nfType,
} from '../nfnetlink.js';
import type { NetlinkMessage } from '../nlmsg.js';
import { type CtEntry, decodeCtEntry, encodeCtEntry } from './entry.js';
import * as C from './enums.js';
import { type CtTuple, encodeTuple } from './tuple.js';

export type CtMessageKind = 'dump' | 'new' | 'update' | 'destroy';

export interface CtMessage {
  kind: CtMessageKind;
  entry: CtEntry;
}

/**
 * Decodes a ctnetlink message. NEW events carry NLM_F_CREATE (|EXCL),
 * UPDATE events no flags, DESTROY events type CT_DELETE, dump replies
 * NLM_F_MULTI (docs/kernel.md §2).
 */
export function decodeCtMessage(m: NetlinkMessage): CtMessage {
  const kind = ctMessageKind(m);
  const g = decodeNfGenMsg(m.payload);
  return { kind, entry: decodeCtEntry(m.payload, NFGENMSG_LEN, m.payload.length, g.family) };
}

/** What a ctnetlink message reports, from its type and flags alone. */
export function ctMessageKind(m: { type: number; flags: number }): CtMessageKind {
  return ctKind(m.type, m.flags);
}

/** ctMessageKind from the header's type and flags. */
export function ctKind(type: number, flags: number): CtMessageKind {
  if (nfSubsys(type) !== NFNL_SUBSYS_CTNETLINK) {
    throw new DecodeError(`message type 0x${type.toString(16)} is not ctnetlink`, 0, 'ctnetlink');
  }
  const msg = nfMsg(type);
  if (msg === C.IPCTNL_MSG_CT_DELETE) return 'destroy';
  if (msg !== C.IPCTNL_MSG_CT_NEW) throw new DecodeError(`unexpected ctnetlink message ${msg}`, 0, 'ctnetlink');
  if (flags & NLM_F_MULTI) return 'dump';
  return flags & NLM_F_CREATE ? 'new' : 'update';
}

/** Encodes an entry as the kernel would send it for `kind` (for tests, fakes and replay). */
export function encodeCtMessage(kind: CtMessageKind, entry: CtEntry): { type: number; flags: number; payload: Buffer } {
  const type = nfType(NFNL_SUBSYS_CTNETLINK, kind === 'destroy' ? C.IPCTNL_MSG_CT_DELETE : C.IPCTNL_MSG_CT_NEW);
  const flags = kind === 'dump' ? NLM_F_MULTI : kind === 'new' ? NLM_F_CREATE | NLM_F_EXCL : 0;
  return { type, flags, payload: nfPayload(entry.family, 0, encodeCtEntry(entry).toBuffer()) };
}

export interface CtDumpFilter {
  family?: number;
  mark?: number;
  markMask?: number;
  zone?: number;
}

/** Payload of a CT_GET dump request; mark/mask and zone are filtered by the kernel. */
export function ctDumpRequest(f: CtDumpFilter = {}): { type: number; payload: Buffer } {
  const w = new AttrWriter();
  if (f.mark !== undefined) {
    w.u32be(C.CTA_MARK, f.mark);
    w.u32be(C.CTA_MARK_MASK, f.markMask ?? 0xffffffff);
  }
  if (f.zone !== undefined) w.u16be(C.CTA_ZONE, f.zone);
  return {
    type: nfType(NFNL_SUBSYS_CTNETLINK, C.IPCTNL_MSG_CT_GET),
    payload: nfPayload(f.family ?? 0, 0, w.toBuffer()),
  };
}

/** Payload of a CT_DELETE for one entry, by its original tuple (and id when known, to hit exactly that entry). */
export function ctDeleteRequest(family: number, orig: CtTuple, opts: { id?: number; zone?: number } = {}) {
  const w = new AttrWriter();
  w.nest(C.CTA_TUPLE_ORIG, (n) => encodeTuple(n, orig));
  if (opts.id !== undefined) w.u32be(C.CTA_ID, opts.id);
  if (opts.zone !== undefined) w.u16be(C.CTA_ZONE, opts.zone);
  return { type: nfType(NFNL_SUBSYS_CTNETLINK, C.IPCTNL_MSG_CT_DELETE), payload: nfPayload(family, 0, w.toBuffer()) };
}
