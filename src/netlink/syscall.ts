/**
 * The few syscalls the `netlink` package lacks (docs/kernel.md §1, §5), reached
 * through koffi. This is the only file that imports koffi. Every call
 * checks its return value and throws a FlowgrabError carrying the errno.
 */
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import koffi from 'koffi';
import { FlowgrabError } from '../errors.js';
import { errnoName } from './errno.js';

export const SOL_SOCKET = 1;
export const SOL_NETLINK = 270;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SO_PEERCRED = 17;
export const SO_MEMINFO = 55;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_BROADCAST_SEND_ERROR = 4;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const CLONE_NEWNET = 0x40000000;
/** ioctl on any socket: a new fd for the network namespace the socket lives in (needs CAP_NET_ADMIN there). */
export const SIOCGSKNS = 0x894c;
const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
/** Index of sk_drops in the u32 array SO_MEMINFO returns (include/uapi/linux/sock_diag.h). */
const SK_MEMINFO_DROPS = 8;
const SK_MEMINFO_VARS = 9;

interface Libc {
  setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: number[]) => number;
  getsockname: (fd: number, addr: Buffer, len: number[]) => number;
  setns: (fd: number, nstype: number) => number;
  ioctl: (fd: number, request: number, ...typed: unknown[]) => number;
  socket: (domain: number, type: number, protocol: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  close: (fd: number) => number;
  eventfd: (initval: number, flags: number) => number;
  write: (fd: number, buf: Buffer, len: number) => number;
  flock: (fd: number, op: number) => number;
  /** Called on libuv's thread pool (`.async`) only. */
  recvmmsg: { async: (...args: unknown[]) => void };
  poll: { async: (...args: unknown[]) => void };
}

let libc: Libc | undefined;
/** libc through koffi, loaded once (for the syscall modules of this directory). */
export function lib(): Libc {
  if (libc) return libc;
  const c = koffi.load('libc.so.6');
  libc = {
    setsockopt: c.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    getsockopt: c.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)'),
    getsockname: c.func('int getsockname(int, _Out_ void *, _Inout_ uint32_t *)'),
    setns: c.func('int setns(int, int)'),
    ioctl: c.func('int ioctl(int, unsigned long, ...)'),
    socket: c.func('int socket(int, int, int)'),
    bind: c.func('int bind(int, const void *, uint32_t)'),
    connect: c.func('int connect(int, const void *, uint32_t)'),
    send: c.func('intptr_t send(int, const void *, uintptr_t, int)'),
    close: c.func('int close(int)'),
    eventfd: c.func('int eventfd(unsigned int, int)'),
    write: c.func('intptr_t write(int, const void *, uintptr_t)'),
    flock: c.func('int flock(int, int)'),
    // Addresses as integers: DatagramSet's buffers never move, and their pointers sit inside its headers.
    recvmmsg: c.func('int recvmmsg(int, uintptr_t, unsigned int, int, void *)'),
    poll: c.func('int poll(void *, unsigned long, int)'),
  };
  return libc;
}

/** Throws FG_ERR_SYSCALL with errno's name when `rc` says the call failed. */
export function check(rc: number, op: string): void {
  if (rc >= 0) return;
  const errno = koffi.errno();
  throw new FlowgrabError(errno === 1 ? 'FG_ERR_PERMISSION' : 'FG_ERR_SYSCALL', `${op} failed: ${errnoName(errno)}`, {
    op,
    errno,
  });
}

export function setsockoptInt(fd: number, level: number, name: number, value: number, op = 'setsockopt'): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  check(lib().setsockopt(fd, level, name, b, 4), op);
}

export function getsockoptInt(fd: number, level: number, name: number): number {
  const b = Buffer.alloc(4);
  check(lib().getsockopt(fd, level, name, b, [4]), 'getsockopt');
  return b.readInt32LE(0);
}

/** The kernel's count of messages it dropped because this socket's receive queue was full. */
export function socketDrops(fd: number): number {
  const b = Buffer.alloc(4 * SK_MEMINFO_VARS);
  check(lib().getsockopt(fd, SOL_SOCKET, SO_MEMINFO, b, [b.length]), 'getsockopt(SO_MEMINFO)');
  return b.readUInt32LE(4 * SK_MEMINFO_DROPS);
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** SO_PEERCRED of a connected Unix socket: the peer's pid/uid/gid at connect time. */
export function peerCred(fd: number): PeerCred {
  const b = Buffer.alloc(12);
  check(lib().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, b, [12]), 'getsockopt(SO_PEERCRED)');
  return { pid: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8) };
}

/**
 * The fd behind a netlink socket bound to `port`. The `netlink` package keeps
 * its fd private, so look among our socket fds for the AF_NETLINK one whose
 * bound nl_pid is the port (getsockname works whatever netns it lives in).
 */
export function findNetlinkFd(port: number): number {
  const addr = Buffer.alloc(12);
  for (const name of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // the fd closed while we looked
    }
    if (!target.startsWith('socket:')) continue;
    const fd = Number(name);
    if (lib().getsockname(fd, addr, [12]) < 0) continue;
    if (addr.readUInt16LE(0) === AF_NETLINK && addr.readUInt32LE(4) === port) return fd;
  }
  throw new FlowgrabError('FG_ERR_SYSCALL', `no fd found for netlink port ${port}`, { op: 'findNetlinkFd' });
}

/**
 * Runs `fn` with the calling thread switched into network namespace `name`
 * (/run/netns/NAME, as `ip netns` makes them) and switches back before
 * returning. Sockets created inside stay in that namespace for life. Keep
 * `fn` synchronous: only this thread moves.
 */
export function withNetns<T>(name: string, fn: () => T): T {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `bad netns name ${JSON.stringify(name)}`, { op: 'setns' });
  }
  let target: number;
  try {
    target = openSync(`/run/netns/${name}`, 'r');
  } catch (cause) {
    throw new FlowgrabError('FG_ERR_NETNS', `network namespace ${name} not found (ip netns list)`, {
      op: 'setns',
      cause,
    });
  }
  try {
    return withNetnsFd(target, fn, `setns(${name})`);
  } finally {
    closeSync(target);
  }
}

/** withNetns for a namespace given as an open fd (from /proc, SIOCGSKNS …); the caller keeps the fd. */
export function withNetnsFd<T>(target: number, fn: () => T, op = 'setns'): T {
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    check(lib().setns(target, CLONE_NEWNET), op);
    try {
      return fn();
    } finally {
      // Failing to return would leave the process in the wrong namespace: fatal by design.
      check(lib().setns(home, CLONE_NEWNET), 'setns(back)');
    }
  } finally {
    closeSync(home);
  }
}

/** The network namespace a socket lives in, as a new fd the caller must close (SIOCGSKNS). */
export function socketNetns(fd: number): number {
  const nsfd = lib().ioctl(fd, SIOCGSKNS);
  check(nsfd, 'ioctl(SIOCGSKNS)');
  return nsfd;
}

/**
 * A netlink socket of our own (not the `netlink` package's), for readers that
 * drain it off the main thread. Bound to a port the kernel picks; returns the
 * fd and that port. The caller closes it with closeFd.
 */
export function openNetlinkFd(protocol: number): { fd: number; port: number } {
  const fd = lib().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  check(fd, 'socket(AF_NETLINK)');
  try {
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0); // nl_pid 0: the kernel assigns a unique port
    check(lib().bind(fd, addr, 12), 'bind(AF_NETLINK)');
    check(lib().getsockname(fd, addr, [12]), 'getsockname');
    return { fd, port: addr.readUInt32LE(4) };
  } catch (err) {
    lib().close(fd);
    throw err;
  }
}

/** One whole datagram to the kernel (netlink sends are all or nothing). */
export function sendFd(fd: number, buf: Buffer, op = 'sendmsg'): void {
  check(lib().send(fd, buf, buf.length, 0), op);
}

const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EINTR = 4;

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it; other errors throw. */
export function flockExclusive(fd: number): boolean {
  if (lib().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = koffi.errno();
  if (errno === EWOULDBLOCK) return false;
  throw new FlowgrabError('FG_ERR_SYSCALL', `flock failed: ${errnoName(errno)}`, { op: 'flock', errno });
}

export function closeFd(fd: number): void {
  lib().close(fd);
}

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** A non-blocking eventfd (a wake-up another thread can poll for); the caller closes it with closeFd. */
export function openEventFd(): number {
  const fd = lib().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  check(fd, 'eventfd');
  return fd;
}

/** Makes an eventfd readable (adds 1 to its counter). */
export function signalEventFd(fd: number): void {
  const one = Buffer.alloc(8);
  one.writeUInt32LE(1, 0);
  check(lib().write(fd, one, 8), 'write(eventfd)');
}

const MMSGHDR = 64; // struct mmsghdr on 64-bit Linux: struct msghdr (56) + msg_len (4) + padding
const IOVEC = 16;
const MSG_HDR_NAME = 0;
const MSG_HDR_NAMELEN = 8;
const SOCKADDR_NL = 12;
const MSG_HDR_IOV = 16;
const MSG_HDR_IOVLEN = 24;
const MSG_HDR_FLAGS = 48;
const MSG_LEN = 56;

/**
 * Room for `count` datagrams of up to `size` bytes each, laid out for one
 * recvmmsg(2): the data, its iovecs and the message headers live in buffers
 * this object keeps (their addresses are written into each other, so none
 * may be collected while the kernel may write).
 */
export class DatagramSet {
  readonly data: Buffer;
  private readonly iov: Buffer;
  /** Each datagram's sender (struct sockaddr_nl, 12 bytes): the kernel is port 0. */
  private readonly names: Buffer;
  private readonly hdrs: Buffer;
  readonly address: number;

  constructor(
    readonly count: number,
    readonly size: number,
  ) {
    this.data = Buffer.alloc(count * size);
    this.iov = Buffer.alloc(count * IOVEC);
    this.names = Buffer.alloc(count * SOCKADDR_NL);
    this.hdrs = Buffer.alloc(count * MMSGHDR);
    const data = Number(koffi.address(this.data));
    const iov = Number(koffi.address(this.iov));
    const names = Number(koffi.address(this.names));
    this.address = Number(koffi.address(this.hdrs));
    for (let i = 0; i < count; i++) {
      this.iov.writeBigUInt64LE(BigInt(data + i * size), i * IOVEC);
      this.iov.writeBigUInt64LE(BigInt(size), i * IOVEC + 8);
      // msg_name, msg_namelen: the kernel writes the sender's address (and 12 back as the length) on every read.
      this.hdrs.writeBigUInt64LE(BigInt(names + i * SOCKADDR_NL), i * MMSGHDR + MSG_HDR_NAME);
      this.hdrs.writeUInt32LE(SOCKADDR_NL, i * MMSGHDR + MSG_HDR_NAMELEN);
      this.hdrs.writeBigUInt64LE(BigInt(iov + i * IOVEC), i * MMSGHDR + MSG_HDR_IOV);
      this.hdrs.writeBigUInt64LE(1n, i * MMSGHDR + MSG_HDR_IOVLEN);
    }
  }

  /** Datagram `i` of the last read: a view of this set's memory, valid until the next read into it. */
  datagram(i: number): Buffer {
    // msg_len is what was copied (no MSG_TRUNC in the flags): at most `size`.
    const len = this.hdrs.readUInt32LE(i * MMSGHDR + MSG_LEN);
    return this.data.subarray(i * this.size, i * this.size + len);
  }

  /** The netlink port that sent datagram `i` of the last read: 0 for the kernel. */
  sender(i: number): number {
    return this.names.readUInt32LE(i * SOCKADDR_NL + 4);
  }

  /** Datagram `i` of the last read was longer than `size` (the rest is lost). */
  truncated(i: number): boolean {
    return (this.hdrs.readInt32LE(i * MMSGHDR + MSG_HDR_FLAGS) & MSG_TRUNC) !== 0;
  }
}

/**
 * recvmmsg(2) without waiting, on a thread of libuv's pool: `done` gets the
 * number of datagrams read into `set` (0 when none was queued) or the errno
 * of a failure. One call at a time per set, and per fd.
 */
export function recvmmsgAsync(fd: number, set: DatagramSet, done: (got: number, errno?: number) => void): void {
  lib().recvmmsg.async(fd, set.address, set.count, MSG_DONTWAIT, null, (err: unknown, got: number) => {
    if (err) return done(-1, 0);
    if (got >= 0) return done(got);
    const errno = koffi.errno();
    done(errno === EAGAIN || errno === EINTR ? 0 : -1, errno);
  });
}

/** The struct pollfd array of `fds`, each waiting for input: for pollReadableAsync, made once per socket. */
export function pollFds(fds: number[]): Buffer {
  const pfd = Buffer.alloc(8 * fds.length);
  for (const [i, fd] of fds.entries()) {
    pfd.writeInt32LE(fd, 8 * i);
    pfd.writeInt16LE(1, 8 * i + 4); // POLLIN
  }
  return pfd;
}

/**
 * Waits on a thread of libuv's pool, at most `timeoutMs`, until one of the
 * fds of `pfd` (pollFds) is readable; `done` runs then (or on the timeout,
 * or on an error: the caller reads and finds out). koffi passes the
 * buffer's address only, and the kernel writes each revents into it when
 * poll returns: the callback holds `pfd`, so it cannot be collected first.
 */
export function pollReadableAsync(pfd: Buffer, timeoutMs: number, done: () => void): void {
  lib().poll.async(pfd, pfd.length / 8, timeoutMs, () => {
    pfd.byteLength; // held until now (see above)
    done();
  });
}
