/**
 * IP socket calls the exporters need and Node does not offer: the kernel's path MTU towards an address, a TCP
 * socket's unacknowledged bytes, and a close that resets rather than sends on. Through the same koffi libc as
 * syscall.ts.
 */
import { check, lib, SOL_SOCKET } from './syscall.js';

const SOCK_CLOEXEC = 0o2000000;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
const IP_MTU = 14;
const IPV6_MTU = 24;

/**
 * The path MTU the kernel knows towards `address` (its 4 or 16 bytes) from this thread's network
 * namespace: the route's MTU, or the device's, or what ICMP "fragmentation needed" taught it. Read as
 * ip(7) says, from a UDP socket connected there (a connect sends nothing); undefined when there is no
 * route or the socket calls fail.
 */
export function pathMtu(address: Buffer, port: number): number | undefined {
  const v6 = address.length === 16;
  if (!v6 && address.length !== 4) return undefined;
  const sa = Buffer.alloc(v6 ? 28 : 16);
  sa.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  address.copy(sa, v6 ? 8 : 4);
  const c = lib();
  const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    if (c.connect(fd, sa, sa.length) < 0) return undefined;
    const b = Buffer.alloc(4);
    if (c.getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, b, [4]) < 0) return undefined;
    const mtu = b.readInt32LE(0);
    return mtu > 0 ? mtu : undefined;
  } finally {
    c.close(fd);
  }
}

const SIOCOUTQ = 0x5411;

/** Bytes a TCP socket has sent (or still has to) that its peer has not acknowledged: ioctl(SIOCOUTQ). */
export function tcpUnacked(fd: number): number {
  const b = Buffer.alloc(4);
  check(lib().ioctl(fd, SIOCOUTQ, 'void *', b), 'ioctl(SIOCOUTQ)');
  return b.readInt32LE(0);
}

const SO_LINGER = 13;

/**
 * SO_LINGER {on, 0 s}: when the socket is closed (by us, or by the kernel for a killed process), what its peer
 * has not acknowledged is dropped with a reset instead of sent on. For a sender that keeps what is unconfirmed
 * elsewhere (a spool) and sends it again on its next connection: a killed exporter's queue went out after it
 * died as well, thousands of duplicates.
 */
export function abortOnClose(fd: number): void {
  const b = Buffer.alloc(8); // struct linger { int l_onoff; int l_linger; }
  b.writeInt32LE(1, 0);
  b.writeInt32LE(0, 4);
  check(lib().setsockopt(fd, SOL_SOCKET, SO_LINGER, b, 8), 'setsockopt(SO_LINGER)');
}
