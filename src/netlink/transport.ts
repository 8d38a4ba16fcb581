/**
 * The seam between flowgrab and the kernel: a datagram transport. The native
 * one wraps the `netlink` package (native.ts); `flowgrab/testing` ships a
 * fake that plays the kernel's side. Everything above is tested through one
 * or the other.
 */
export interface TransportOptions {
  /** NETLINK_ROUTE (0), NETLINK_SOCK_DIAG (4), NETLINK_NETFILTER (12). */
  protocol: number;
  /** Network namespace (/run/netns/NAME) to open the socket in; the process stays where it is. */
  netns?: string;
  /** Receive buffer in bytes; forced past rmem_max when running as root. */
  recvBufferBytes?: number;
  /**
   * Peek at each datagram's size before reading it. Needed where one message
   * can be large (packet payloads); dumps read faster into a fixed buffer.
   */
  peek?: boolean;
  /**
   * Without peeking, each datagram is read into a buffer of this size
   * (default 32 KiB, the largest dump chunk the kernel makes). Event sockets
   * whose messages are small read faster with a small one.
   */
  readBufferBytes?: number;
  /**
   * NETLINK_BROADCAST_SEND_ERROR: a multicast the kernel cannot queue for us
   * fails the sender (ctnetlink keeps and retries the event) instead of
   * being dropped silently. Only conntrack makes use of it.
   */
  reliable?: boolean;
  /**
   * Read on a worker thread that drains the socket into batches (batched.ts):
   * many datagrams per wake-up of the main thread. For event sockets, and
   * conntrack table dumps (the worker reads the next parts meanwhile).
   */
  batched?: boolean;
  /**
   * Read only while a request waits for replies, on libuv's thread pool, one
   * read ahead of the decoding (pulled.ts): for request sockets, where a
   * large dump is built by the kernel as it is read.
   */
  pulled?: boolean;
  /**
   * Batched only: how long the worker lets datagrams gather after the first
   * one reaches an idle socket, so that a trickle shares wake-ups (default
   * receiveWorkers.lingerMs: 1 ms, less in flowgrabd). 0 for packets that wait on us (NFQUEUE verdicts) or are stamped
   * with the time they reach us (NFLOG output packets carry no timestamp).
   */
  lingerMs?: number;
  /**
   * Batched only: the most the worker reads ahead of the main thread (default
   * its whole ring, 8 MiB). NFQUEUE keeps it to the socket buffer, so that
   * the buffer still bounds what waits on a verdict and fail-open takes over
   * beyond it, as with a reader on the main thread.
   */
  readAheadBytes?: number;
  /**
   * Batched only: the datagrams nearly fill readBufferBytes (dump parts), so
   * the worker reads them straight into its ring, a slot each, instead of
   * into a scratch area from which it packs them (which small ones need).
   */
  fullDatagrams?: boolean;
}

export interface TransportHandlers {
  /**
   * One datagram, possibly holding many netlink messages; `groups` is the
   * multicast bitmask. `transient`: `buf` is reused after the call (pulled.ts).
   * The datagram is `buf[start, end)` (all of `buf` without them): a reader
   * that gets many datagrams in one buffer (batched.ts) makes no view per datagram.
   */
  datagram(buf: Buffer, groups: number, transient?: boolean, start?: number, end?: number): void;
  /** A receive error (ENOBUFS, a truncated datagram); the transport keeps working. */
  error(err: Error): void;
  /** True while the socket waits for replies to its requests: a pulled transport reads only then. */
  waiting?(): boolean;
  /**
   * Replies may be lost (a read failed, a datagram came truncated): the requests waiting now cannot be
   * answered whole, and fail with `err` at once rather than at their idle timeout. Called before error(err).
   */
  abandoned?(err: Error): void;
}

export interface RawTransport {
  /** The socket's netlink port id (nl_pid). */
  readonly port: number;
  setHandlers(h: TransportHandlers): void;
  send(buf: Buffer): void;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  /** Messages the kernel dropped because our receive queue was full, since the socket opened. */
  drops(): number;
  /** Effective receive buffer in bytes. */
  recvBufferSize(): number;
  /**
   * Delivers now what it has read and holds back: a transport that reads ahead (batched.ts) may hold events to
   * give the event loop a turn. Others deliver as they read and need not have it. What a reader has not handed
   * over yet (a receive worker's last batch, up to its linger: 1 ms by default) and the kernel's queue still
   * come later: a dump started now races those, as it always raced the kernel's queue.
   */
  deliverPending?(): void;
  close(): void;
}

export type TransportFactory = (opts: TransportOptions) => RawTransport;
