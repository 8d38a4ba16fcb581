/**
 * Who is on the other end of a Unix socket, from the kernel (SO_PEERCRED:
 * pid, uid, gid at connect time, also for clients in other namespaces);
 * never from anything the client sends.
 */
import type { Socket } from 'node:net';
import { identityOfUid } from '../auth/identity.js';
import type { Identity } from '../auth/policy.js';
import { FlowgrabError } from '../errors.js';
import { peerCred } from '../netlink/syscall.js';

export interface Peer extends Identity {
  pid: number;
}

export function peerOf(conn: Socket): Peer {
  // Node exposes no SO_PEERCRED; the accepted socket's fd is on its (undocumented but stable) handle.
  const fd = (conn as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new FlowgrabError('FG_ERR_PERMISSION', 'cannot identify the peer: no file descriptor', { op: 'peercred' });
  const cred = peerCred(fd);
  return { pid: cred.pid, ...identityOfUid(cred.uid, cred.gid) };
}
