/**
 * nfnetlink framing: every netfilter message starts with struct nfgenmsg
 * {u8 family, u8 version, be16 res_id} and its type is (subsys << 8) | msg.
 */
import { DecodeError } from '../errors.js';

export const NFNL_SUBSYS_CTNETLINK = 1;
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;
export const NFNL_SUBSYS_QUEUE = 3;
export const NFNL_SUBSYS_ULOG = 4;
export const NFNETLINK_V0 = 0;
export const NFGENMSG_LEN = 4;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const nfType = (subsys: number, msg: number): number => (subsys << 8) | msg;
export const nfSubsys = (type: number): number => type >> 8;
export const nfMsg = (type: number): number => type & 0xff;

export interface NfGenMsg {
  family: number;
  version: number;
  resId: number;
}

export function encodeNfGenMsg(family: number, resId = 0, version = NFNETLINK_V0): Buffer {
  const b = Buffer.alloc(NFGENMSG_LEN);
  b[0] = family;
  b[1] = version;
  b.writeUInt16BE(resId, 2);
  return b;
}

export function decodeNfGenMsg(payload: Buffer): NfGenMsg {
  if (payload.length < NFGENMSG_LEN) throw new DecodeError('truncated nfgenmsg', payload.length, 'nfgenmsg');
  return { family: payload[0], version: payload[1], resId: payload.readUInt16BE(2) };
}

/** nfgenmsg followed by attributes: the payload of every nfnetlink request. */
export function nfPayload(family: number, resId: number, attrs: Buffer): Buffer {
  return Buffer.concat([encodeNfGenMsg(family, resId), attrs]);
}
