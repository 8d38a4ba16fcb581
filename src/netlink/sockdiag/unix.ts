/**
 * unix_diag messages (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY with
 * sdiag_family AF_UNIX): struct unix_diag_req, and struct unix_diag_msg plus
 * UNIX_DIAG_* attributes, decode and encode. Everything is host order
 * (little-endian). An exact lookup names the socket by its inode, the
 * number /proc/PID/fd shows as `socket:[N]`.
 */
import { DecodeError } from '../../errors.js';
import { AttrReader, AttrWriter, type RawAttr } from '../attr.js';
import type { NetlinkMessage } from '../nlmsg.js';
import * as U from './enums.js';

const OP = 'unix_diag';

export interface UnixDiagRequest {
  /** sdiag_protocol: 0 for AF_UNIX. */
  protocol: number;
  /** udiag_states: a bit per TCP_* state to match. */
  states: number;
  /** udiag_ino: the socket's inode; with the cookie unset, an exact lookup. */
  ino: number;
  /** UDIAG_SHOW_* bits. */
  show: number;
  /** udiag_cookie[2]; [SOCK_NOCOOKIE, SOCK_NOCOOKIE] matches any socket with this inode. */
  cookie: [number, number];
}

/** One socket as unix_diag reports it. */
export interface UnixDiagEntry {
  /** udiag_family: AF_UNIX (1). */
  family: number;
  /** SOCK_STREAM (1), SOCK_DGRAM (2), SOCK_SEQPACKET (5). */
  type: number;
  /** TCP_* numbering: ESTABLISHED 1, CLOSE 7, LISTEN 10. */
  state: number;
  ino: number;
  cookie: [number, number];
  /** UNIX_DIAG_NAME: the raw sun_path (a leading NUL marks an abstract name); see unixSocketName(). */
  name?: Buffer;
  /** UNIX_DIAG_VFS: inode and device of the file a pathname socket is bound to. */
  vfs?: { ino: number; dev: number };
  /** UNIX_DIAG_PEER: the inode of the socket at the other end (0 or absent when none). */
  peer?: number;
  /** UNIX_DIAG_ICONS: inodes of connections waiting in a listener's accept queue. */
  icons?: number[];
  /** UNIX_DIAG_RQLEN: for a listener, accept-queue length and backlog; otherwise bytes queued to read and to send. */
  rqlen?: { rqueue: number; wqueue: number };
  /** UNIX_DIAG_MEMINFO: the SK_MEMINFO_* u32 array. */
  meminfo?: number[];
  /** UNIX_DIAG_SHUTDOWN: the sk_shutdown bits (always sent). */
  shutdown?: number;
  /**
   * UNIX_DIAG_UID: the owner of the socket's inode, i.e. the fsuid of
   * whoever called socket(), not the credentials at connect().
   */
  uid?: number;
  /** Attributes this codec does not interpret, kept for re-encoding. */
  unknown?: RawAttr[];
}

export function encodeUnixDiagReq(r: UnixDiagRequest): Buffer {
  const b = Buffer.alloc(U.UNIX_DIAG_REQ_LEN);
  b[0] = U.AF_UNIX;
  b[1] = r.protocol;
  b.writeUInt32LE(r.states >>> 0, 4);
  b.writeUInt32LE(r.ino >>> 0, 8);
  b.writeUInt32LE(r.show >>> 0, 12);
  b.writeUInt32LE(r.cookie[0] >>> 0, 16);
  b.writeUInt32LE(r.cookie[1] >>> 0, 20);
  return b;
}

export function decodeUnixDiagReq(p: Buffer): UnixDiagRequest {
  if (p.length < U.UNIX_DIAG_REQ_LEN)
    throw new DecodeError(`unix_diag_req needs ${U.UNIX_DIAG_REQ_LEN} bytes`, p.length, OP);
  if (p[0] !== U.AF_UNIX) throw new DecodeError(`sdiag_family ${p[0]} is not AF_UNIX`, 0, OP);
  return {
    protocol: p[1],
    states: p.readUInt32LE(4),
    ino: p.readUInt32LE(8),
    show: p.readUInt32LE(12),
    cookie: [p.readUInt32LE(16), p.readUInt32LE(20)],
  };
}

/** The SOCK_DIAG_BY_FAMILY request that looks up one socket by inode (send without NLM_F_DUMP). */
export function unixDiagRequest(ino: number, show: number): { type: number; payload: Buffer } {
  return {
    type: U.SOCK_DIAG_BY_FAMILY,
    payload: encodeUnixDiagReq({
      protocol: 0,
      states: U.UNIX_DIAG_ALL_STATES,
      ino,
      show,
      cookie: [U.SOCK_NOCOOKIE, U.SOCK_NOCOOKIE],
    }),
  };
}

function u32Array(r: AttrReader, what: string): number[] {
  const len = r.len();
  if (len % 4) throw r.error(`${what} of ${len} bytes is not a u32 array`);
  const out: number[] = [];
  for (let i = 0; i < len; i += 4) out.push(r.buffer.readUInt32LE(r.valueStart + i));
  return out;
}

/** Decodes the payload of a unix_diag reply (unix_diag_msg, then attributes). Throws DecodeError only. */
export function decodeUnixDiag(p: Buffer): UnixDiagEntry {
  if (p.length < U.UNIX_DIAG_MSG_LEN)
    throw new DecodeError(`unix_diag_msg needs ${U.UNIX_DIAG_MSG_LEN} bytes`, p.length, OP);
  const e: UnixDiagEntry = {
    family: p[0],
    type: p[1],
    state: p[2],
    ino: p.readUInt32LE(4),
    cookie: [p.readUInt32LE(8), p.readUInt32LE(12)],
  };
  const r = new AttrReader(OP).reset(p, U.UNIX_DIAG_MSG_LEN);
  while (r.next()) {
    switch (r.type()) {
      case U.UNIX_DIAG_NAME:
        e.name = r.bytes();
        break;
      case U.UNIX_DIAG_VFS: {
        const v = r.need(8, 'UNIX_DIAG_VFS');
        e.vfs = { ino: p.readUInt32LE(v), dev: p.readUInt32LE(v + 4) };
        break;
      }
      case U.UNIX_DIAG_PEER:
        e.peer = p.readUInt32LE(r.need(4, 'UNIX_DIAG_PEER'));
        break;
      case U.UNIX_DIAG_ICONS:
        e.icons = u32Array(r, 'UNIX_DIAG_ICONS');
        break;
      case U.UNIX_DIAG_RQLEN: {
        const v = r.need(8, 'UNIX_DIAG_RQLEN');
        e.rqlen = { rqueue: p.readUInt32LE(v), wqueue: p.readUInt32LE(v + 4) };
        break;
      }
      case U.UNIX_DIAG_MEMINFO:
        e.meminfo = u32Array(r, 'UNIX_DIAG_MEMINFO');
        break;
      case U.UNIX_DIAG_SHUTDOWN:
        e.shutdown = p[r.need(1, 'UNIX_DIAG_SHUTDOWN')];
        break;
      case U.UNIX_DIAG_UID:
        e.uid = p.readUInt32LE(r.need(4, 'UNIX_DIAG_UID'));
        break;
      default:
        (e.unknown ??= []).push(r.raw(true));
    }
  }
  return e;
}

const u32s = (xs: number[]): Buffer => {
  const b = Buffer.alloc(4 * xs.length);
  for (let i = 0; i < xs.length; i++) b.writeUInt32LE(xs[i] >>> 0, 4 * i);
  return b;
};

/** Encodes a reply payload in the kernel's order (sk_diag_fill: NAME, VFS, PEER, ICONS, RQLEN, MEMINFO, SHUTDOWN, UID). */
export function encodeUnixDiag(e: UnixDiagEntry): Buffer {
  const hdr = Buffer.alloc(U.UNIX_DIAG_MSG_LEN);
  hdr[0] = e.family;
  hdr[1] = e.type;
  hdr[2] = e.state;
  hdr.writeUInt32LE(e.ino >>> 0, 4);
  hdr.writeUInt32LE(e.cookie[0] >>> 0, 8);
  hdr.writeUInt32LE(e.cookie[1] >>> 0, 12);
  const w = new AttrWriter();
  if (e.name !== undefined) w.bytes(U.UNIX_DIAG_NAME, e.name);
  if (e.vfs !== undefined) w.bytes(U.UNIX_DIAG_VFS, u32s([e.vfs.ino, e.vfs.dev]));
  if (e.peer !== undefined) w.u32le(U.UNIX_DIAG_PEER, e.peer);
  if (e.icons !== undefined) w.bytes(U.UNIX_DIAG_ICONS, u32s(e.icons));
  if (e.rqlen !== undefined) w.bytes(U.UNIX_DIAG_RQLEN, u32s([e.rqlen.rqueue, e.rqlen.wqueue]));
  if (e.meminfo !== undefined) w.bytes(U.UNIX_DIAG_MEMINFO, u32s(e.meminfo));
  if (e.shutdown !== undefined) w.u8(U.UNIX_DIAG_SHUTDOWN, e.shutdown);
  if (e.uid !== undefined) w.u32le(U.UNIX_DIAG_UID, e.uid);
  for (const a of e.unknown ?? []) w.raw(a);
  return Buffer.concat([hdr, w.toBuffer()]);
}

/** A reply message: SOCK_DIAG_BY_FAMILY carrying an AF_UNIX socket. */
export function decodeUnixDiagMessage(m: NetlinkMessage): UnixDiagEntry {
  if (m.type !== U.SOCK_DIAG_BY_FAMILY)
    throw new DecodeError(`message type ${m.type} is not SOCK_DIAG_BY_FAMILY`, 0, OP);
  const e = decodeUnixDiag(m.payload);
  if (e.family !== U.AF_UNIX) throw new DecodeError(`udiag_family ${e.family} is not AF_UNIX`, 0, OP);
  return e;
}

/** A socket name as `ss` prints it: the path, `@name` for an abstract one, "" for none. */
export function unixSocketName(name: Buffer | undefined): string {
  if (!name?.length) return '';
  if (name[0] === 0) return `@${name.toString('latin1', 1)}`;
  const nul = name.indexOf(0);
  return name.toString('utf8', 0, nul < 0 ? name.length : nul);
}
