/**
 * A connected net.Socket's file descriptor, for the socket options Node does not offer (SO_PEERCRED,
 * SIOCOUTQ, SO_LINGER): on its handle, undocumented but stable. Undefined when it has none (not connected,
 * or a pipe Node wraps differently).
 */
import type { Socket } from 'node:net';

export function socketFd(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
