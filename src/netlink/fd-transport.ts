/**
 * What the transports over a netlink socket of our own (opened through the
 * koffi seam, syscall.ts) share, whoever reads it: sends, memberships, the
 * kernel's counters, and error delivery that never throws back into a
 * native callback. batched.ts reads on a worker thread; pulled.ts reads on
 * demand on libuv's thread pool.
 */
import { FlowgrabError } from '../errors.js';
import {
  closeFd,
  getsockoptInt,
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_DROP_MEMBERSHIP,
  openEventFd,
  openNetlinkFd,
  SO_RCVBUF,
  SOL_NETLINK,
  SOL_SOCKET,
  sendFd,
  setsockoptInt,
  socketDrops,
  withNetns,
} from './syscall.js';
import type { RawTransport, TransportHandlers, TransportOptions } from './transport.js';

/**
 * A netlink socket of our own (in `opts.netns` if given) and an eventfd, configured, handed to `make`; if
 * anything fails on the way (an option, the eventfd, the transport's constructor), both are closed again.
 */
export function openOwnSocket<T>(
  opts: TransportOptions,
  configure: (fd: number) => void,
  make: (fd: number, efd: number, port: number) => T,
): T {
  const { fd, port } = opts.netns
    ? withNetns(opts.netns, () => openNetlinkFd(opts.protocol))
    : openNetlinkFd(opts.protocol);
  let efd = -1;
  try {
    configure(fd);
    efd = openEventFd();
    return make(fd, efd, port);
  } catch (err) {
    closeFd(fd);
    if (efd >= 0) closeFd(efd);
    throw err;
  }
}

/** A transport over a socket of our own (openOwnSocket) and the eventfd that wakes whoever waits on it. */
export abstract class FdTransport implements RawTransport {
  protected handlers: TransportHandlers = { datagram: () => {}, error: () => {} };
  protected closed = false;
  private fdsClosed = false;

  constructor(
    protected readonly fd: number,
    protected readonly efd: number,
    readonly port: number,
  ) {}

  abstract close(): void;

  /** Closes the socket and the eventfd, once: when nothing (no worker, no call on the pool) uses them any more. */
  protected closeFds(): void {
    if (this.fdsClosed) return;
    this.fdsClosed = true;
    closeFd(this.fd);
    closeFd(this.efd);
  }

  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }

  send(buf: Buffer): void {
    if (this.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'netlink socket is closed', { op: 'send' });
    sendFd(this.fd, buf);
  }

  addMembership(group: number): void {
    if (this.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'netlink socket is closed', { op: 'addMembership' });
    setsockoptInt(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, 'setsockopt(NETLINK_ADD_MEMBERSHIP)');
  }

  dropMembership(group: number): void {
    if (!this.closed) setsockoptInt(this.fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, group);
  }

  drops(): number {
    return this.closed ? 0 : socketDrops(this.fd);
  }

  recvBufferSize(): number {
    return this.closed ? 0 : getsockoptInt(this.fd, SOL_SOCKET, SO_RCVBUF);
  }

  /** One datagram (`d[start, end)`, or all of `d`) to the handlers; what they throw goes to the error handler. */
  protected deliver(d: Buffer, groups: number, transient?: boolean, start?: number, end?: number): void {
    try {
      this.handlers.datagram(d, groups, transient, start, end);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  protected fail(err: Error): void {
    if (this.closed) return;
    try {
      this.handlers.error(err);
    } catch {
      // An error listener's failure has nowhere better to go.
    }
  }

  /**
   * A receive error after which the replies of the requests waiting may be incomplete: they fail with it now,
   * before the error listeners hear of it (a request one of them makes is not among those that fail).
   */
  protected abandon(err: Error): void {
    if (this.closed) return;
    try {
      this.handlers.abandoned?.(err);
    } catch {
      // As for error listeners: nowhere better to go.
    }
    this.fail(err);
  }
}

/**
 * Datagrams a process sent to our port (the kernel's come from port 0), dropped by a reader: a local process
 * with CAP_NET_ADMIN in the socket's namespace could otherwise forge events and replies. A warning (op
 * `sender`), not a loss: nothing of the kernel's is missing, and a sender must not be able to make us resync.
 */
export function foreignDatagrams(count: number, port: number): FlowgrabError {
  return new FlowgrabError(
    'FG_ERR_NETLINK',
    `${count} datagram${count === 1 ? '' : 's'} not sent by the kernel dropped (the last from netlink port ${port})`,
    { op: 'sender' },
  );
}

/**
 * Counts the datagrams a reader dropped as not the kernel's and says them (foreignDatagrams) at most once a
 * second: the first at once, what follows within the second at its end. (The receive worker counts its own
 * the same way, in recv-worker.ts.)
 */
export class ForeignSenders {
  private count = 0;
  private port = 0;
  private saidAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly say: (err: FlowgrabError) => void) {}

  /** One datagram from netlink port `port`, dropped. */
  add(port: number): void {
    this.count++;
    this.port = port;
    const wait = this.saidAt + 1000 - Date.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait).unref();
  }

  /** Says nothing more (the reader closed). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.count = 0;
  }

  private flush(): void {
    this.timer = undefined;
    if (this.count === 0) return;
    this.saidAt = Date.now();
    const err = foreignDatagrams(this.count, this.port);
    this.count = 0;
    this.say(err);
  }
}

/**
 * The op of a transport error after which nothing more will be read (the receive worker died): a source
 * ends its stream with it instead of waiting for events that cannot come.
 */
export const READER_GONE = 'reader';

/** True for an error after which the socket reads nothing more (READER_GONE). */
export function readerGone(err: Error): boolean {
  return (err as { op?: string }).op === READER_GONE;
}
