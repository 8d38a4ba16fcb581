/**
 * Who holds the other end of a connected Unix socket, from unix_diag
 * (docs/kernel.md §5): look up our socket by inode with UDIAG_SHOW_PEER to get
 * the peer's inode, then the peer with UDIAG_SHOW_UID to get its owner.
 * Both sockets of a connection live in the *client's* network namespace, so
 * the lookup runs there (SIOCGSKNS on our socket gives that namespace);
 * without CAP_NET_ADMIN it stays in ours and a client elsewhere is "not found".
 */
import { closeSync, fstatSync, statSync } from 'node:fs';
import { FlowgrabError } from '../../errors.js';
import { openNativeTransport } from '../native.js';
import { NetlinkOpError, NetlinkSocket } from '../socket.js';
import { socketNetns, withNetnsFd } from '../syscall.js';
import type { TransportFactory } from '../transport.js';
import { NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, UDIAG_SHOW_PEER, UDIAG_SHOW_UID } from './enums.js';
import { decodeUnixDiagMessage, type UnixDiagEntry, unixDiagRequest } from './unix.js';

const ENOENT = 2;
const EINVAL = 22;

export interface UnixPeerOptions {
  /** The netlink transport (the fake kernel in unit tests); the native one by default. */
  transport?: TransportFactory;
  /** Per lookup. Default 2 s: an exact lookup answers at once. */
  timeoutMs?: number;
}

export interface UnixPeerInfo {
  /** Our socket's inode. */
  ino: number;
  /** The peer socket's inode: /proc/PID/fd of its holders shows `socket:[peerIno]`. */
  peerIno: number;
  /** Owner of the peer socket's inode: the fsuid of whoever created it (not the uid at connect time). */
  uid: number;
}

/** One exact lookup by inode. A socket that is gone gives a FlowgrabError FG_ERR_PERMISSION ("peer gone"). */
export async function unixDiagLookup(
  sock: NetlinkSocket,
  ino: number,
  show: number,
  timeoutMs = 2000,
): Promise<UnixDiagEntry> {
  const op = `unix_diag lookup of socket:[${ino}]`;
  const { type, payload } = unixDiagRequest(ino, show);
  let replies: Awaited<ReturnType<NetlinkSocket['request']>>;
  try {
    replies = await sock.request(type, 0, payload, { op, idleTimeoutMs: timeoutMs });
  } catch (err) {
    // EINVAL: inode 0 (the peer already hung up). ENOENT: no such socket in the namespace we asked.
    if (err instanceof NetlinkOpError && (err.errno === ENOENT || err.errno === EINVAL)) {
      const why =
        err.errno === ENOENT
          ? 'not found (ENOENT): it closed, or it lives in a network namespace we may not enter'
          : 'no such socket (EINVAL)';
      throw new FlowgrabError('FG_ERR_PERMISSION', `${op}: ${why}`, { op: 'unix_diag', errno: err.errno, cause: err });
    }
    throw err;
  }
  const msgs = replies.filter((m) => m.type === SOCK_DIAG_BY_FAMILY);
  if (msgs.length !== 1)
    throw new FlowgrabError('FG_ERR_NETLINK', `${op}: ${msgs.length} answers to an exact lookup`, { op: 'unix_diag' });
  const e = decodeUnixDiagMessage(msgs[0]);
  if (e.ino !== ino)
    throw new FlowgrabError('FG_ERR_NETLINK', `${op}: the kernel answered for socket:[${e.ino}]`, { op: 'unix_diag' });
  return e;
}

/** The namespace fd to run the lookup in, or undefined for our own (or when we may not ask). */
function foreignNetns(fd: number): number | undefined {
  let nsfd: number;
  try {
    nsfd = socketNetns(fd);
  } catch {
    return undefined; // EPERM without CAP_NET_ADMIN: look in our own namespace
  }
  const ns = fstatSync(nsfd);
  const home = statSync('/proc/thread-self/ns/net');
  if (ns.ino === home.ino && ns.dev === home.dev) {
    closeSync(nsfd);
    return undefined;
  }
  return nsfd;
}

/**
 * The peer of the connected Unix socket `fd`, from the kernel. Reads nothing
 * from the socket itself, so nothing the client sends can change the answer.
 */
export async function unixPeer(fd: number, opts: UnixPeerOptions = {}): Promise<UnixPeerInfo> {
  const ino = fstatSync(fd).ino;
  const nsfd = foreignNetns(fd);
  const open = () =>
    NetlinkSocket.open(
      { protocol: NETLINK_SOCK_DIAG, recvBufferBytes: 1 << 16, readBufferBytes: 8192 },
      opts.transport ?? openNativeTransport,
    );
  let sock: NetlinkSocket;
  try {
    sock = nsfd === undefined ? open() : withNetnsFd(nsfd, open, 'setns(peer netns)');
  } finally {
    if (nsfd !== undefined) closeSync(nsfd);
  }
  try {
    const me = await unixDiagLookup(sock, ino, UDIAG_SHOW_PEER, opts.timeoutMs);
    if (!me.peer)
      throw new FlowgrabError('FG_ERR_PERMISSION', `socket:[${ino}] has no peer: the client hung up`, {
        op: 'unix_diag',
      });
    const peer = await unixDiagLookup(sock, me.peer, UDIAG_SHOW_PEER | UDIAG_SHOW_UID, opts.timeoutMs);
    // The peer must point back at us; otherwise its inode was reused by another socket in between.
    if (peer.peer !== ino)
      throw new FlowgrabError('FG_ERR_PERMISSION', `socket:[${me.peer}] is no longer connected to socket:[${ino}]`, {
        op: 'unix_diag',
      });
    if (peer.uid === undefined)
      throw new FlowgrabError('FG_ERR_NETLINK', `socket:[${me.peer}]: no UNIX_DIAG_UID in the answer`, {
        op: 'unix_diag',
      });
    return { ino, peerIno: me.peer, uid: peer.uid };
  } finally {
    sock.close();
  }
}
