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
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { FlowgrabError } from '../errors.js';
import { errnoName } from './errno.js';
import { FdTransport, openOwnSocket } from './fd-transport.js';
import { RECV_WORKER_SOURCE } from './recv-worker.js';
import { closeFd, signalEventFd } from './syscall.js';
import type { RawTransport, TransportOptions } from './transport.js';

/** Shared ring between the worker and the main thread: the most the worker reads ahead of the main thread. */
const RING_BYTES = 8 << 20;
/** NFLOG/NFQUEUE datagrams: a 64 KiB packet (GSO off) plus its attributes, with room to spare. */
const MAX_PACKET_DATAGRAM = 256 * 1024;
/** The longest close() waits for the worker to let go of the fd (it does so between two syscalls). */
const CLOSE_WAIT_MS = 2000;
const koffiPath = createRequire(import.meta.url).resolve('koffi');

/** Opens the socket (in `opts.netns` if given); `configure` sets its options before the worker starts reading. */
export function openBatchedTransport(opts: TransportOptions, configure: (fd: number) => void): RawTransport {
  const { fd, efd, port } = openOwnSocket(opts, configure);
  // Peeking sockets carry packets of unknown size: a datagram slot large enough for any of them.
  const maxDatagram = opts.peek ? MAX_PACKET_DATAGRAM : (opts.readBufferBytes ?? 32 * 1024);
  return new BatchedTransport(fd, efd, port, maxDatagram, opts.lingerMs ?? 1, opts.readAheadBytes);
}

const WRAP = 0xffffffff;
const W = 1;
const R = 2;
const NOTIFIED = 3;
const OWNER = 4;
const LINGER = 5;
/** OWNER values (recv-worker.ts): the worker may use the fd; the main thread has it back. */
const WORKER_OWNS = 1;
const MAIN_OWNS = 2;

class BatchedTransport extends FdTransport {
  private readonly state = new Int32Array(new SharedArrayBuffer(32));
  private readonly ring: Uint8Array;
  private readonly worker: Worker;
  private fdsClosed = false;

  constructor(
    fd: number,
    private readonly efd: number,
    port: number,
    maxDatagram: number,
    lingerMs: number,
    readAhead = Number.POSITIVE_INFINITY,
  ) {
    super(fd, port);
    this.ring = new Uint8Array(new SharedArrayBuffer(Math.max(RING_BYTES, 4 * (maxDatagram + 8))));
    this.worker = new Worker(RECV_WORKER_SOURCE, {
      eval: true,
      // Not the parent's flags: under `node --input-type=module` the source would run as a module, without require.
      execArgv: [],
      workerData: {
        koffiPath,
        fd,
        efd,
        maxDatagram,
        lingerMs,
        readAhead: Math.max(1, readAhead),
        state: this.state.buffer,
        ring: this.ring.buffer,
      },
    });
    this.worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    this.worker.on('error', (err) =>
      this.fail(new FlowgrabError('FG_ERR_NETLINK', `receive worker: ${err.message}`, { op: 'recvmsg', cause: err })),
    );
    // A worker that died, or did not let go within CLOSE_WAIT_MS, leaves the fds to be closed here.
    this.worker.on('exit', () => {
      this.closed = true;
      this.closeFds();
    });
  }

  private closeFds(): void {
    if (this.fdsClosed) return;
    this.fdsClosed = true;
    closeFd(this.fd);
    closeFd(this.efd);
  }

  private onMessage(m: WorkerMessage | 0): void {
    if (m === 0) this.drain();
    else if (m.truncated !== undefined) {
      this.fail(new FlowgrabError('FG_ERR_NETLINK', `datagram of ${m.truncated} bytes truncated`, { op: 'recvmsg' }));
    } else if (m.errno !== undefined) {
      this.fail(
        new FlowgrabError('FG_ERR_NETLINK', `recvmsg: ${errnoName(m.errno)}`, { op: 'recvmsg', errno: m.errno }),
      );
    }
  }

  /**
   * Takes every datagram the worker has published: copies them out of the
   * ring (subscribers may keep slices of a datagram), gives the space back,
   * then delivers them.
   */
  private drain(): void {
    // Cleared before reading the write offset: whatever the worker adds after this wakes us again.
    Atomics.store(this.state, NOTIFIED, 0);
    const w = Atomics.load(this.state, W);
    let r = Atomics.load(this.state, R);
    if (r === w) return;
    const ring = this.ring;
    const view = Buffer.from(ring.buffer, ring.byteOffset, ring.byteLength);
    const parts: Buffer[] = [];
    let start = r;
    while (r !== w) {
      const n = view.readUInt32LE(r);
      if (n === WRAP) {
        if (r > start) parts.push(copy(view, start, r));
        r = start = 0;
        continue;
      }
      r += 8 + ((n + 3) & ~3);
      if (r === ring.byteLength) {
        parts.push(copy(view, start, r));
        r = start = 0;
      }
    }
    if (r > start) parts.push(copy(view, start, r));
    Atomics.store(this.state, R, w);
    Atomics.notify(this.state, R);
    for (const p of parts) this.deliverAll(p);
  }

  private deliverAll(b: Buffer): void {
    let off = 0;
    while (off + 8 <= b.length && !this.closed) {
      const n = b.readUInt32LE(off);
      const groups = b.readUInt32LE(off + 4);
      const d = b.subarray(off + 8, off + 8 + n);
      off += 8 + ((n + 3) & ~3);
      this.deliver(d, groups);
    }
  }

  /** Stops the worker and closes the socket before returning (see the file comment). */
  override close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.state;
    Atomics.store(s, 0, 1);
    signalEventFd(this.efd);
    Atomics.notify(s, R);
    Atomics.notify(s, LINGER);
    // A worker still loading takes the fd back from nobody; a running one lets go between two syscalls.
    if (Atomics.compareExchange(s, OWNER, 0, MAIN_OWNS) === WORKER_OWNS) {
      const deadline = Date.now() + CLOSE_WAIT_MS;
      let left = CLOSE_WAIT_MS;
      while (Atomics.load(s, OWNER) === WORKER_OWNS && left > 0) {
        Atomics.wait(s, OWNER, WORKER_OWNS, left);
        left = deadline - Date.now();
      }
    }
    if (Atomics.load(s, OWNER) === MAIN_OWNS) this.closeFds();
  }
}

interface WorkerMessage {
  truncated?: number;
  errno?: number;
}

/**
 * A private copy of ring bytes. Buffer#copy is a plain memcpy; TypedArray#set from shared memory copies
 * element by element with relaxed atomics, several times slower (it was the main thread's largest cost).
 */
function copy(view: Buffer, from: number, to: number): Buffer {
  const b = Buffer.allocUnsafe(to - from);
  view.copy(b, 0, from, to);
  return b;
}
