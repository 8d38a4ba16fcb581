/**
 * RawTransport that reads on a worker thread (recv-worker.ts): a netlink
 * socket of our own, opened and configured through the koffi seam
 * (syscall.ts), drained off the main thread into batches. For event sockets,
 * where one datagram carries one small message and per-datagram callbacks
 * dominate the cost. Requests work too (send is a plain send(2)).
 *
 * close() is synchronous: it stops the worker, waits (bounded) until the
 * worker has let go of the fd, and closes it, so the kernel has released
 * the socket, its NFLOG group or NFQUEUE queue included, when close()
 * returns; a new reader can bind the same group at once (recv-worker.ts).
 */
import type { Worker } from 'node:worker_threads';
import { FlowgrabError } from '../errors.js';
import { errnoName } from './errno.js';
import { FdTransport, foreignDatagrams, openOwnSocket, READER_GONE } from './fd-transport.js';
import { keep, receiveWorkers, workerFor } from './recv-pool.js';
import { signalEventFd } from './syscall.js';
import type { RawTransport, TransportOptions } from './transport.js';

/** Shared ring between the worker and the main thread: the most the worker reads ahead of the main thread. */
const RING_BYTES = 8 << 20;
/** Bytes delivered between two hand-backs of ring space to the worker, within one drain. */
const RELEASE_BYTES = 1 << 20;
/** NFLOG/NFQUEUE datagrams: a 64 KiB packet (GSO off) plus its attributes, with room to spare. */
const MAX_PACKET_DATAGRAM = 256 * 1024;
/** The longest close() waits for the worker to let go of the fd (it does so between two syscalls). */
const CLOSE_WAIT_MS = 2000;
/** Settings and counts of the receive workers (recv-pool.ts), where callers have always found them. */
export { receiveWorkers };

let jobs = 0;

/** Opens the socket (in `opts.netns` if given); `configure` sets its options before the worker starts reading. */
export function openBatchedTransport(opts: TransportOptions, configure: (fd: number) => void): RawTransport {
  // Peeking sockets carry packets of unknown size: a datagram slot large enough for any of them.
  const maxDatagram = opts.peek ? MAX_PACKET_DATAGRAM : (opts.readBufferBytes ?? 32 * 1024);
  return openOwnSocket(
    opts,
    configure,
    (fd, efd, port) =>
      new BatchedTransport(
        fd,
        efd,
        port,
        maxDatagram,
        opts.lingerMs ?? receiveWorkers.lingerMs,
        opts.readAheadBytes,
        opts.fullDatagrams ?? false,
      ),
  );
}

const WRAP = 0xffffffff;
/** A length of SKIP + n: n bytes the worker left unused after a datagram read in place (recv-worker.ts). */
const SKIP = 0x80000000;
const W = 1;
const R = 2;
const NOTIFIED = 3;
const OWNER = 4;
const LINGER = 5;
/** OWNER values (recv-worker.ts): the worker may use the fd; the main thread has it back (3: from a dying worker). */
const WORKER_OWNS = 1;
const MAIN_OWNS = 2;

/**
 * Transports whose worker may be in poll(2) on their socket. process.exit() terminates workers without
 * closing anything and waits for their threads, which only leave poll(2) when it returns: the exit hook
 * wakes each one as close() does (stop flag, eventfd), so the process ends at once, not when the
 * worker's idle poll times out.
 */
const reading = new Set<BatchedTransport>();
/** The exit hook is added with the first transport (not on import: every importer would add one). */
let exitHook = false;

function wakeForExit(): void {
  for (const t of reading) {
    try {
      t.stopWorker();
    } catch {
      // exiting anyway: a socket that cannot be woken only makes the exit wait for its poll
    }
  }
}

/**
 * How long one drain may deliver before it lets the event loop have a turn (timers, signals, other sockets): under
 * a flood of DNS packets a drain never ran dry, and the loop waited 8 s (SIGTERM unanswered, a supervisor's
 * SIGKILL leaving rules behind).
 */
const DRAIN_TURN_MS = 20;

class BatchedTransport extends FdTransport {
  private readonly state = new Int32Array(new SharedArrayBuffer(32));
  private readonly ring: Uint8Array;
  /** The ring as a Buffer, for the socket's reads in place. */
  private readonly view: Buffer;
  private readonly worker: Worker;
  private readonly job: number;
  private workerFailed = false;
  /** A drain that ran out of its turn, to go on from setImmediate. */
  private drainLater?: ReturnType<typeof setImmediate>;
  /** A drain is delivering (drain() is not re-entered). */
  private draining = false;

  constructor(
    fd: number,
    efd: number,
    port: number,
    maxDatagram: number,
    lingerMs: number,
    readAhead = Number.POSITIVE_INFINITY,
    fullDatagrams = false,
  ) {
    super(fd, efd, port);
    this.ring = new Uint8Array(new SharedArrayBuffer(Math.max(RING_BYTES, 4 * (maxDatagram + 8))));
    this.view = Buffer.from(this.ring.buffer, this.ring.byteOffset, this.ring.byteLength);
    this.job = ++jobs;
    this.worker = workerFor({
      job: this.job,
      fd,
      efd,
      maxDatagram,
      lingerMs,
      pollTimeoutMs: receiveWorkers.pollTimeoutMs,
      readAhead: Math.max(1, readAhead),
      fullDatagrams,
      state: this.state.buffer as SharedArrayBuffer,
      ring: this.ring.buffer as SharedArrayBuffer,
    });
    this.worker.on('message', this.onMessage);
    this.worker.on('error', this.onError);
    this.worker.on('exit', this.onExit);
    reading.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', wakeForExit);
    }
  }

  /** Tells the worker to stop and wakes it, without waiting (close() waits; the exit hook does not). */
  stopWorker(): void {
    if (this.closed) return;
    Atomics.store(this.state, 0, 1);
    signalEventFd(this.efd);
    Atomics.notify(this.state, R);
    Atomics.notify(this.state, LINGER);
  }

  private readonly onMessage = (m: WorkerMessage | number): void => {
    if (typeof m === 'number') {
      // A drain that ran out of its turn continues from setImmediate: the wake-ups meanwhile find it asked for.
      if (m === this.job && !this.drainLater) this.drain();
      return;
    }
    if (m.job !== this.job) return;
    // What the worker published before telling of an error (an overrun, a truncation) is delivered first, in
    // order, however long it takes: a resync must follow the events that came before the overrun.
    this.deliverPending();
    if (m.truncated !== undefined) {
      this.abandon(
        new FlowgrabError('FG_ERR_NETLINK', `datagram of ${m.truncated} bytes truncated`, { op: 'recvmsg' }),
      );
    } else if (m.errno !== undefined) {
      this.fail(
        new FlowgrabError('FG_ERR_NETLINK', `recvmsg: ${errnoName(m.errno)}`, { op: 'recvmsg', errno: m.errno }),
      );
    } else if (m.foreign !== undefined) {
      this.fail(foreignDatagrams(m.foreign, m.port ?? 0));
    }
  };

  // The worker failing or exiting ends the socket for good (op READER_GONE): its users end their streams.
  private readonly onError = (err: Error): void => {
    this.workerFailed = true;
    this.abandon(
      new FlowgrabError('FG_ERR_NETLINK', `receive worker: ${err.message}`, { op: READER_GONE, cause: err }),
    );
  };

  /** A worker that died, or did not let go within CLOSE_WAIT_MS (and was ended), leaves the fds to be closed here. */
  private readonly onExit = (): void => {
    reading.delete(this);
    if (!this.closed && !this.workerFailed)
      this.abandon(new FlowgrabError('FG_ERR_NETLINK', 'receive worker exited', { op: READER_GONE }));
    this.closed = true;
    this.closeFds();
  };

  /**
   * Takes every datagram the worker has published and delivers it in place, as a transient datagram (the
   * socket copies what outlives the call: request replies, messages for event listeners; payload listeners
   * read in place). The space goes back to the worker as delivery passes RELEASE_BYTES, and at the end.
   * Copying each batch out of the ring first cost an allocation and a copy per batch: about 0.3 µs per
   * conntrack event, and the garbage collector's time for them.
   */
  private drain(budgeted = true): void {
    // A listener that asks for pending datagrams (deliverPending) from inside a delivery gets them from this drain.
    if (this.draining) return;
    // Cleared before reading the write offset: whatever the worker adds after this wakes us again.
    Atomics.store(this.state, NOTIFIED, 0);
    let w = Atomics.load(this.state, W);
    let r = Atomics.load(this.state, R);
    if (r === w) return;
    const view = this.view;
    let released = 0;
    const until = performance.now() + DRAIN_TURN_MS;
    let count = 0;
    this.draining = true;
    try {
      while (r !== w && !this.closed) {
        // A flood must not keep the event loop from timers, signals and other sockets: past its turn, the rest
        // waits for setImmediate (the worker keeps filling the ring meanwhile, and waits for room when full).
        if (budgeted && (++count & 63) === 0 && performance.now() > until) {
          w = r;
          this.drainLater = setImmediate(() => {
            this.drainLater = undefined;
            this.drain();
          });
          break;
        }
        const n = view.readUInt32LE(r);
        if (n === WRAP) {
          r = 0;
          continue;
        }
        const start = r + 8;
        let next: number;
        if (n >= SKIP) next = start + (n - SKIP);
        else {
          next = start + ((n + 3) & ~3);
          this.deliver(view, view.readUInt32LE(r + 4), true, start, start + n);
        }
        released += next - r;
        r = next === view.length ? 0 : next;
        if (released >= RELEASE_BYTES) {
          released = 0;
          this.release(r);
        }
      }
    } finally {
      // Everything published is the main thread's to give back, delivered or not (a socket closed meanwhile); a
      // drain cut short gives back what it read.
      this.draining = false;
      this.release(w);
    }
  }

  /** Delivers everything the worker has published, however long it takes (RawTransport.deliverPending). */
  deliverPending(): void {
    if (this.closed) return;
    if (this.drainLater) {
      clearImmediate(this.drainLater);
      this.drainLater = undefined;
    }
    this.drain(false);
  }

  /** Gives the ring up to `r` back to the worker, and wakes it if it waits for room. */
  private release(r: number): void {
    Atomics.store(this.state, R, r);
    Atomics.notify(this.state, R);
  }

  /** Stops the worker and closes the socket before returning (see the file comment). */
  override close(): void {
    if (this.closed) return;
    if (this.drainLater) clearImmediate(this.drainLater);
    this.drainLater = undefined;
    this.stopWorker();
    this.closed = true;
    reading.delete(this);
    const s = this.state;
    // A worker still loading takes the fd back from nobody; a running one lets go between two syscalls.
    if (Atomics.compareExchange(s, OWNER, 0, MAIN_OWNS) === WORKER_OWNS) {
      const deadline = Date.now() + CLOSE_WAIT_MS;
      let left = CLOSE_WAIT_MS;
      while (Atomics.load(s, OWNER) === WORKER_OWNS && left > 0) {
        Atomics.wait(s, OWNER, WORKER_OWNS, left);
        left = deadline - Date.now();
      }
    }
    const w = this.worker;
    w.off('message', this.onMessage);
    w.off('error', this.onError);
    const owner = Atomics.load(s, OWNER);
    if (owner === WORKER_OWNS) {
      void w.terminate(); // stuck in a syscall past CLOSE_WAIT_MS: its exit closes the fds
      return;
    }
    w.off('exit', this.onExit);
    this.closeFds();
    // A worker whose job failed (it let go as it died) serves no other.
    if (owner === MAIN_OWNS && !this.workerFailed) keep(w);
    else void w.terminate();
  }
}

interface WorkerMessage {
  job: number;
  truncated?: number;
  errno?: number;
  /** Datagrams dropped because a process, not the kernel, sent them; `port` is the last one's sender. */
  foreign?: number;
  port?: number;
}
