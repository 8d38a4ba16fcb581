/**
 * NFQNL_MSG_CONFIG and verdict messages: builders (what flowgrab sends) and
 * decoders (what a fake kernel or a test reads back). nfgenmsg family is
 * AF_UNSPEC and res_id the queue number; values are big-endian.
 */
import { DecodeError } from '../../errors.js';
import { AttrReader, AttrWriter } from '../attr.js';
import { NLM_F_REQUEST } from '../enums.js';
import { AF_UNSPEC, decodeNfGenMsg, NFGENMSG_LEN, NFNL_SUBSYS_QUEUE, nfPayload, nfType } from '../nfnetlink.js';
import * as Q from './enums.js';

export const NFQUEUE_CONFIG_TYPE = nfType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_CONFIG);
export const NFQUEUE_VERDICT_TYPE = nfType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_VERDICT);
export const NFQUEUE_VERDICT_BATCH_TYPE = nfType(NFNL_SUBSYS_QUEUE, Q.NFQNL_MSG_VERDICT_BATCH);

function config(queue: number, fill: (w: AttrWriter) => void): Buffer {
  const w = new AttrWriter();
  fill(w);
  return nfPayload(AF_UNSPEC, queue, w.toBuffer());
}

/** struct nfqnl_msg_config_cmd {u8 command; u8 pad; be16 pf}; pf only matters for the obsolete PF_(UN)BIND. */
function cmd(queue: number, command: number, pf = 0): Buffer {
  const v = Buffer.alloc(4);
  v[0] = command;
  v.writeUInt16BE(pf, 2);
  return config(queue, (w) => w.bytes(Q.NFQA_CFG_CMD, v));
}

export const nfqBind = (queue: number) => cmd(queue, Q.NFQNL_CFG_CMD_BIND);
export const nfqUnbind = (queue: number) => cmd(queue, Q.NFQNL_CFG_CMD_UNBIND);

/** Copy mode and how many bytes of each packet to copy (struct nfqnl_msg_config_params, 5 bytes, packed). */
export function nfqParams(queue: number, copyRange: number, mode = Q.NFQNL_COPY_PACKET): Buffer {
  const v = Buffer.alloc(5);
  v.writeUInt32BE(copyRange >>> 0, 0);
  v[4] = mode;
  return config(queue, (w) => w.bytes(Q.NFQA_CFG_PARAMS, v));
}

/** Packets the kernel holds for us at most; 0 makes it drop everything. */
export const nfqMaxLen = (queue: number, n: number) => config(queue, (w) => w.u32be(Q.NFQA_CFG_QUEUE_MAXLEN, n));

/** Sets the NFQA_CFG_F_* bits in `mask` to those in `flags` (the kernel wants both, flags first). */
export const nfqFlags = (queue: number, flags: number, mask = flags) =>
  config(queue, (w) => w.u32be(Q.NFQA_CFG_FLAGS, flags).u32be(Q.NFQA_CFG_MASK, mask));

export interface NfqConfig {
  queue: number;
  cmd?: { command: number; pf: number };
  params?: { copyRange: number; mode: number };
  maxLen?: number;
  flags?: number;
  mask?: number;
}

const OP = 'nfqueue config';

/** Reads a config message payload back (the kernel's view of what we asked). Throws DecodeError only. */
export function decodeNfqConfig(payload: Buffer): NfqConfig {
  const c: NfqConfig = { queue: decodeNfGenMsg(payload).resId };
  const r = new AttrReader(OP).reset(payload, NFGENMSG_LEN);
  while (r.next()) {
    switch (r.type()) {
      case Q.NFQA_CFG_CMD: {
        const v = r.need(4, 'nfqnl_msg_config_cmd');
        c.cmd = { command: payload[v], pf: payload.readUInt16BE(v + 2) };
        break;
      }
      case Q.NFQA_CFG_PARAMS: {
        const v = r.need(5, 'nfqnl_msg_config_params');
        c.params = { copyRange: payload.readUInt32BE(v), mode: payload[v + 4] };
        break;
      }
      case Q.NFQA_CFG_QUEUE_MAXLEN:
        c.maxLen = r.u32be();
        break;
      case Q.NFQA_CFG_FLAGS:
        c.flags = r.u32be();
        break;
      case Q.NFQA_CFG_MASK:
        c.mask = r.u32be();
        break;
    }
  }
  return c;
}

export interface NfqVerdict {
  queue: number;
  /** NF_ACCEPT, NF_DROP, NF_REPEAT … */
  verdict: number;
  /** The packet (VERDICT), or every queued packet up to and including it (VERDICT_BATCH). */
  id: number;
  /** A new mark for the packet(s). */
  mark?: number;
}

/** Payload of a verdict (type NFQUEUE_VERDICT_TYPE) or batch verdict (NFQUEUE_VERDICT_BATCH_TYPE). */
export function nfqVerdict(v: NfqVerdict): Buffer {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32BE(v.verdict >>> 0, 0);
  hdr.writeUInt32BE(v.id >>> 0, 4);
  return config(v.queue, (w) => {
    w.bytes(Q.NFQA_VERDICT_HDR, hdr);
    if (v.mark !== undefined) w.u32be(Q.NFQA_MARK, v.mark);
  });
}

export function decodeNfqVerdict(payload: Buffer): NfqVerdict {
  const out: NfqVerdict = { queue: decodeNfGenMsg(payload).resId, verdict: -1, id: -1 };
  const r = new AttrReader('nfqueue verdict').reset(payload, NFGENMSG_LEN);
  while (r.next()) {
    const t = r.type();
    if (t === Q.NFQA_VERDICT_HDR) {
      const v = r.need(8, 'nfqnl_msg_verdict_hdr');
      out.verdict = payload.readUInt32BE(v);
      out.id = payload.readUInt32BE(v + 4);
    } else if (t === Q.NFQA_MARK) out.mark = r.u32be();
  }
  if (out.id < 0) throw new DecodeError('no NFQA_VERDICT_HDR', NFGENMSG_LEN, 'nfqueue verdict');
  return out;
}

/** Bytes a whole verdict message takes (nlmsghdr, nfgenmsg, NFQA_VERDICT_HDR, optional NFQA_MARK). */
export const nfqVerdictMessageSize = (v: NfqVerdict): number => (v.mark === undefined ? 32 : 40);

/**
 * Writes a whole verdict message (`type` VERDICT or VERDICT_BATCH, flags
 * NLM_F_REQUEST, seq 0) at `off` and returns the offset after it: the same
 * bytes as encodeMessage(…, nfqVerdict(v)), without allocating, so many
 * verdicts can share one datagram.
 */
export function writeNfqVerdictMessage(buf: Buffer, off: number, type: number, v: NfqVerdict): number {
  const len = nfqVerdictMessageSize(v);
  buf.writeUInt32LE(len, off);
  buf.writeUInt16LE(type, off + 4);
  buf.writeUInt16LE(NLM_F_REQUEST, off + 6);
  buf.writeUInt32LE(0, off + 8);
  buf.writeUInt32LE(0, off + 12);
  buf.writeUInt32LE(0, off + 16); // nfgenmsg: family AF_UNSPEC, version 0, res_id below
  buf.writeUInt16BE(v.queue, off + 18);
  buf.writeUInt32LE(0x0002000c, off + 20); // nla_len 12, NFQA_VERDICT_HDR
  buf.writeUInt32BE(v.verdict >>> 0, off + 24);
  buf.writeUInt32BE(v.id >>> 0, off + 28);
  if (v.mark !== undefined) {
    buf.writeUInt32LE(0x00030008, off + 32); // nla_len 8, NFQA_MARK
    buf.writeUInt32BE(v.mark >>> 0, off + 36);
  }
  return off + len;
}
