/**
 * RawTransport over the `netlink` package: the only file that imports it.
 *
 * netlink@0.3.0 aborts the process when the kernel overruns a socket
 * (ENOBUFS → POLLERR → a C++ exception in a libuv callback) and when a
 * 'message' listener throws. So: NETLINK_NO_ENOBUFS is set on every socket
 * (loss is read from the kernel's drop counter instead), and listeners
 * never throw.
 */
import { createRequire } from 'node:module';
import type { RawNetlinkSocket } from 'netlink/dist/raw.js';
import { FlowgrabError } from '../errors.js';
import { openBatchedTransport } from './batched.js';
import { ForeignSenders } from './fd-transport.js';
import { openPulledTransport } from './pulled.js';
import {
  findNetlinkFd,
  NETLINK_BROADCAST_SEND_ERROR,
  NETLINK_EXT_ACK,
  NETLINK_NO_ENOBUFS,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOL_NETLINK,
  SOL_SOCKET,
  setsockoptInt,
  socketDrops,
  withNetns,
} from './syscall.js';
import type { RawTransport, TransportHandlers, TransportOptions } from './transport.js';

const DUMP_BUFFER = 32 * 1024;
const DEFAULT_RCVBUF = 4 << 20;

/**
 * The package's raw module, loaded on the first socket that reads on the main thread: the default readers
 * (batched.ts, pulled.ts) never need it, and loading it costs a native addon's dlopen (~5 ms of every start).
 * Only the raw module: the package index also loads rtnetlink/genl/nl80211 codecs (~25 ms).
 */
let rawModule: typeof import('netlink/dist/raw.js') | undefined;
const rawSocket = (): typeof RawNetlinkSocket =>
  (rawModule ??= createRequire(import.meta.url)('netlink/dist/raw.js') as typeof import('netlink/dist/raw.js'))
    .RawNetlinkSocket;

/**
 * Options every socket gets (see the file comment): no ENOBUFS, extended
 * acks, reliable broadcasts when asked, and the receive buffer, forced past
 * rmem_max as root (capped at rmem_max otherwise).
 */
function configure(fd: number, opts: TransportOptions): void {
  setsockoptInt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, 'setsockopt(NETLINK_NO_ENOBUFS)');
  setsockoptInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, 'setsockopt(NETLINK_EXT_ACK)');
  // With NO_ENOBUFS, a full queue neither errors our socket nor loses the event (kernel commit 38938bfe).
  if (opts.reliable) {
    setsockoptInt(fd, SOL_NETLINK, NETLINK_BROADCAST_SEND_ERROR, 1, 'setsockopt(NETLINK_BROADCAST_SEND_ERROR)');
  }
  const bytes = opts.recvBufferBytes ?? DEFAULT_RCVBUF;
  try {
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes, 'setsockopt(SO_RCVBUFFORCE)');
  } catch {
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, bytes, 'setsockopt(SO_RCVBUF)');
  }
}

export function openNativeTransport(opts: TransportOptions): RawTransport {
  if (opts.pulled) return ownSocket(opts, openPulledTransport);
  if (opts.batched) return ownSocket(opts, openBatchedTransport);
  const Raw = rawSocket();
  const create = () =>
    new Raw(opts.protocol, {
      messagePeeking: opts.peek ?? false,
      msgBufferSize: opts.readBufferBytes ?? DUMP_BUFFER,
    } as ConstructorParameters<typeof RawNetlinkSocket>[1]);
  let sock: RawNetlinkSocket;
  try {
    sock = opts.netns ? withNetns(opts.netns, create) : create();
  } catch (cause) {
    if (cause instanceof FlowgrabError) throw cause;
    const errno = (cause as { errno?: number }).errno;
    const perm = errno === 1 || errno === 13;
    throw new FlowgrabError(
      perm ? 'FG_ERR_PERMISSION' : 'FG_ERR_NETLINK',
      perm ? 'opening a netlink socket needs CAP_NET_ADMIN (run as root)' : `netlink socket: ${String(cause)}`,
      { op: 'socket', errno, cause },
    );
  }
  return new NativeTransport(sock, opts);
}

/** A transport over a socket of our own (batched.ts, pulled.ts), configured as every socket is. */
function ownSocket(
  opts: TransportOptions,
  open: (opts: TransportOptions, configure: (fd: number) => void) => RawTransport,
): RawTransport {
  try {
    return open(opts, (fd) => configure(fd, opts));
  } catch (cause) {
    const errno = (cause as { errno?: number }).errno;
    if (errno === 1 || errno === 13) {
      throw new FlowgrabError('FG_ERR_PERMISSION', 'opening a netlink socket needs CAP_NET_ADMIN (run as root)', {
        op: 'socket',
        errno,
        cause,
      });
    }
    throw cause;
  }
}

class NativeTransport implements RawTransport {
  readonly port: number;
  private readonly fd: number;
  private handlers: TransportHandlers = { datagram: () => {}, error: () => {} };
  private closed = false;
  /** Datagrams not sent by the kernel, dropped and said (at most once a second). */
  private readonly foreign = new ForeignSenders((err) => this.fail(err));

  constructor(
    private readonly sock: RawNetlinkSocket,
    opts: TransportOptions,
  ) {
    this.port = sock.address().port;
    try {
      this.fd = findNetlinkFd(this.port);
      configure(this.fd, opts);
    } catch (err) {
      sock.close();
      throw err;
    }
    // Both listeners must exist and must never throw (see the file comment).
    sock.on('message', (buf, rinfo) => {
      if (rinfo.port === 0) this.deliver(buf, rinfo.groups);
      else this.foreign.add(rinfo.port); // not the kernel's: dropped
    });
    sock.on('truncatedMessage', (buf) =>
      this.fail(new FlowgrabError('FG_ERR_NETLINK', `datagram of ${buf.length}+ bytes truncated`, { op: 'recvmsg' })),
    );
    sock.on('error', (err) =>
      this.fail(
        new FlowgrabError('FG_ERR_NETLINK', `recvmsg: ${err.code ?? err.message}`, {
          op: err.syscall ?? 'recvmsg',
          errno: err.errno,
          cause: err,
        }),
      ),
    );
  }

  private deliver(buf: Buffer, groups: number): void {
    try {
      this.handlers.datagram(buf, groups);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private fail(err: Error): void {
    try {
      this.handlers.error(err);
    } catch (inner) {
      // Last resort: surface it outside the native callback, where it cannot abort the process.
      queueMicrotask(() => {
        throw inner;
      });
    }
  }

  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }

  send(buf: Buffer): void {
    if (this.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'netlink socket is closed', { op: 'send' });
    this.sock.send(buf, {}, (err) => {
      if (err)
        this.fail(
          new FlowgrabError('FG_ERR_NETLINK', `sendmsg: ${err.code}`, { op: 'sendmsg', errno: err.errno, cause: err }),
        );
    });
  }

  addMembership(group: number): void {
    this.sock.addMembership(group);
  }

  dropMembership(group: number): void {
    if (!this.closed) this.sock.dropMembership(group);
  }

  drops(): number {
    return this.closed ? 0 : socketDrops(this.fd);
  }

  recvBufferSize(): number {
    return this.sock.getRecvBufferSize();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.foreign.stop();
    this.sock.close();
  }
}
