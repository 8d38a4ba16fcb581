/** NFULNL_MSG_CONFIG builders: bind a group, copy mode, queue threshold, flags. */
import { AttrWriter } from '../attr.js';
import { AF_UNSPEC, NFNL_SUBSYS_ULOG, nfPayload, nfType } from '../nfnetlink.js';
import * as L from './enums.js';

export const NFLOG_CONFIG_TYPE = nfType(NFNL_SUBSYS_ULOG, L.NFULNL_MSG_CONFIG);

function config(group: number, fill: (w: AttrWriter) => void): Buffer {
  const w = new AttrWriter();
  fill(w);
  return nfPayload(AF_UNSPEC, group, w.toBuffer());
}

export const nflogBind = (group: number) => config(group, (w) => w.u8(L.NFULA_CFG_CMD, L.NFULNL_CFG_CMD_BIND));
export const nflogUnbind = (group: number) => config(group, (w) => w.u8(L.NFULA_CFG_CMD, L.NFULNL_CFG_CMD_UNBIND));

/** Copy mode and how many bytes of each packet to copy. */
export function nflogMode(group: number, copyRange: number, mode = L.NFULNL_COPY_PACKET): Buffer {
  const v = Buffer.alloc(6);
  v.writeUInt32BE(copyRange, 0);
  v[4] = mode;
  return config(group, (w) => w.bytes(L.NFULA_CFG_MODE, v));
}

/** Deliver after this many packets are queued (1 = at once; the default batching delays by up to ~1 s). */
export const nflogQueueThreshold = (group: number, n: number) => config(group, (w) => w.u32be(L.NFULA_CFG_QTHRESH, n));

/** Flush timeout in 1/100 s. */
export const nflogTimeout = (group: number, centis: number) =>
  config(group, (w) => w.u32be(L.NFULA_CFG_TIMEOUT, centis));

/** NFULA_CFG_FLAGS is a be16 (unlike most netfilter values). */
export const nflogFlags = (group: number, flags: number) => config(group, (w) => w.u16be(L.NFULA_CFG_FLAGS, flags));
