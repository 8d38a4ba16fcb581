/**
 * RawTransport for request sockets (deletes, neighbour dumps, the CLI's
 * one-shot conntrack dump): a netlink socket of our own that is read only
 * while its NetlinkSocket waits for replies (TransportHandlers.waiting), on
 * libuv's thread pool, so that the kernel builds the next part of a dump
 * while the main thread decodes the last. Conntrack table dumps in a process
 * that lives on are read on a worker instead (batched.ts, receiveWorkers.dumps):
 * each read here wakes a pool thread, the pool's threads take turns, and when
 * the scheduler woke them on the main thread's CPU the two halves of the
 * pipeline ran one after the other (a 100 000-entry dump took 140-159 ms
 * instead of 112-120).
 *
 * A netlink dump is built inside recvmsg(2): each read lets the kernel queue
 * the next part. Read on the main thread, the kernel's work and ours take
 * turns; here one recvmmsg(2) is always in flight on a pool thread while the
 * main thread decodes what the previous one read (two DatagramSets, used in
 * turn), so a dump takes about as long as the slower of the two. Nothing
 * reads the socket in between: the replies arrive in order, and an idle
 * socket costs nothing (no poller, no thread).
 *
 * When a read finds nothing queued while a request still waits (a reply the
 * kernel has not made yet), a pool thread polls the socket for at most
 * WAIT_SLICE_MS at a time, so a slow reply never holds a pool thread for
 * long. close() stops reading; the fds are closed as soon as no call on the
 * pool uses them (at once when none does), and an eventfd wakes a poll.
 */
import { FlowgrabError } from '../errors.js';
import { errnoName } from './errno.js';
import { FdTransport, ForeignSenders, openOwnSocket } from './fd-transport.js';
import { DatagramSet, pollFds, pollReadableAsync, recvmmsgAsync, signalEventFd } from './syscall.js';
import type { RawTransport, TransportOptions } from './transport.js';

/** Datagrams per recvmmsg(2): 16 dump parts of up to 32 KiB (~1 600 conntrack entries); two sets take 1 MiB. */
const BATCH = 16;
/** The largest dump part the kernel makes (netlink_recvmsg caps the dump skb at 32 KiB). */
const DATAGRAM = 32 * 1024;
/** The most a datagram slot may be asked to hold (two sets of BATCH slots are allocated per socket): 8 MiB in all. */
const MAX_DATAGRAM = 256 * 1024;
/** Longest a pool thread waits in poll(2) before the socket looks again whether a request still waits. */
const WAIT_SLICE_MS = 100;

/**
 * Calls on the pool at once, over every pulled transport of the process; the others wait their turn (FIFO).
 * koffi refuses a 257th async call in flight (it throws), and libuv's pool runs 4 at a time anyway: a few
 * hundred concurrent requests (each deleteConntrackTuple opens a socket) must queue, not fail.
 */
export const POOL_CALLS = 32;
const pool = { running: 0, queued: [] as (() => void)[] };

/** Starts `call` when fewer than POOL_CALLS run; it calls the `release` it is given once (when its callback runs). */
function onPool(call: (release: () => void) => void): void {
  const start = () => {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = pool.queued.shift();
      if (next) next();
      else pool.running--;
    };
    call(release);
  };
  if (pool.running < POOL_CALLS) {
    pool.running++;
    start();
  } else pool.queued.push(start);
}

/** For tests: calls on the pool now and waiting for one. */
export function poolCalls(): { running: number; queued: number } {
  return { running: pool.running, queued: pool.queued.length };
}

/** Opens the socket (in `opts.netns` if given); `configure` sets its options. */
export function openPulledTransport(opts: TransportOptions, configure: (fd: number) => void): RawTransport {
  const datagram = Math.min(MAX_DATAGRAM, Math.max(DATAGRAM, opts.readBufferBytes ?? DATAGRAM));
  return openOwnSocket(opts, configure, (fd, efd, port) => new PulledTransport(fd, efd, port, datagram));
}

class PulledTransport extends FdTransport {
  private readonly sets: [DatagramSet, DatagramSet];
  /** What a wait polls (the socket, and the eventfd close() writes), kept as long as the transport. */
  private readonly pollFds: Buffer;
  /** The set the next read goes into. */
  private next = 0;
  /** A call on the pool (a read or a poll) uses the fds. */
  private busy = false;
  /** Replies not sent by the kernel, dropped and said (at most once a second). */
  private readonly foreign = new ForeignSenders((err) => this.fail(err));

  constructor(fd: number, efd: number, port: number, datagram: number) {
    super(fd, efd, port);
    this.sets = [new DatagramSet(BATCH, datagram), new DatagramSet(BATCH, datagram)];
    this.pollFds = pollFds([fd, efd]);
  }

  override send(buf: Buffer): void {
    super.send(buf);
    // The kernel has queued the answer's first part by now (ctnetlink and rtnetlink answer in sendmsg).
    if (!this.busy) this.read();
  }

  private waiting(): boolean {
    return !this.closed && (this.handlers.waiting?.() ?? false);
  }

  /** One recvmmsg on the pool; while the kernel fills the other set, this one is delivered. */
  private read(): void {
    const set = this.sets[this.next];
    this.next ^= 1;
    this.busy = true;
    this.onPool((release) =>
      recvmmsgAsync(this.fd, set, (got, errno) => {
        release();
        this.busy = false;
        this.afterRead(set, got, errno);
      }),
    );
  }

  /**
   * Runs `call` (one async call that uses the fds) when the pool has room. Closed meanwhile: the fds close
   * instead. A call koffi refuses (it throws: too many in flight in the process) is a receive error; the
   * requests that wait fail with it.
   */
  private onPool(call: (release: () => void) => void): void {
    onPool((release) => {
      if (this.closed) {
        release();
        this.busy = false;
        return this.closeFds();
      }
      try {
        call(release);
      } catch (err) {
        release();
        this.busy = false;
        if (this.closed) return this.closeFds();
        this.abandon(
          new FlowgrabError('FG_ERR_NETLINK', `reading on the thread pool: ${(err as Error).message}`, {
            op: 'recvmsg',
            cause: err,
          }),
        );
      }
    });
  }

  /** What one recvmmsg read into `set`: `got` datagrams, or -1 and the errno. */
  private afterRead(set: DatagramSet, got: number, errno: number | undefined): void {
    if (this.closed) {
      this.closeFds();
      return;
    }
    if (got < 0) {
      // Reading again would likely fail the same way: the next request's send reads again.
      this.abandon(new FlowgrabError('FG_ERR_NETLINK', `recvmmsg: ${errnoName(errno ?? 0)}`, { op: 'recvmsg', errno }));
      return;
    }
    if (got === 0) {
      if (this.waiting()) this.wait();
      return;
    }
    // More of a dump is queued behind these (the kernel refills as we read): ask for it before decoding.
    this.read();
    for (let i = 0; i < got && !this.closed; i++) {
      const sender = set.sender(i);
      if (sender !== 0) {
        this.foreign.add(sender); // not the kernel's (a forged reply): dropped
        continue;
      }
      if (set.truncated(i)) {
        this.abandon(new FlowgrabError('FG_ERR_NETLINK', `datagram truncated at ${set.size} bytes`, { op: 'recvmsg' }));
        continue;
      }
      this.deliver(set.datagram(i), 0, true);
    }
  }

  /** Nothing queued and a request waits: poll (bounded) on the pool, then read again. */
  private wait(): void {
    this.busy = true;
    this.onPool((release) =>
      pollReadableAsync(this.pollFds, WAIT_SLICE_MS, () => {
        release();
        this.busy = false;
        if (this.closed) return this.closeFds();
        if (this.waiting()) this.read();
      }),
    );
  }

  /** Stops reading; the fds close now, or when the call on the pool that uses them returns (woken at once). */
  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.foreign.stop();
    if (this.busy) signalEventFd(this.efd);
    else this.closeFds();
  }
}
