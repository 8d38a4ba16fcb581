/**
 * The receive worker's ring (recv-worker.ts) at its wrap, driven directly:
 * a batch ends with the write offset in the ring's last, too-short tail,
 * the main thread takes it all, the socket goes quiet, and the read-ahead
 * is below that tail (nfqueue with a small receive buffer). The worker must
 * publish the wrap at once: until the main thread passes the marker the
 * skipped tail counts as unread, and reading stopped for good. Datagrams
 * come on a Unix datagram socketpair (the worker reads any datagram socket
 * alike).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { afterEach, describe, expect, it } from 'vitest';
import { RECV_WORKER_SOURCE } from '../../src/netlink/recv-worker.js';
import { closeFd, openEventFd, signalEventFd } from '../../src/netlink/syscall.js';
import { waitFor } from '../../src/testing/lab/index.js';

const libc = koffi.load('libc.so.6');
const socketpair = libc.func('int socketpair(int, int, int, _Out_ int *sv)');
const send = libc.func('intptr_t send(int, const void *, uintptr_t, int)');
const [AF_UNIX, SOCK_DGRAM, SOCK_CLOEXEC, MSG_DONTWAIT] = [1, 2, 0o2000000, 0x40];
const [STOP, W, R, NOTIFIED] = [0, 1, 2, 3];

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Sends one datagram without blocking this thread (the worker only reads as the main thread takes), bounded. */
async function sendAll(fd: number, b: Buffer): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Number(send(fd, b, b.length, MSG_DONTWAIT)) !== b.length) {
    if (Date.now() > deadline) throw new Error('the worker read nothing for 10 s');
    await new Promise((r) => setImmediate(r));
  }
}

describe('receive worker ring: the wrap', () => {
  it('a wrap after a batch that ended in the last tail is published at once, and reading goes on', async () => {
    const sv = [0, 0];
    expect(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv)).toBe(0);
    const efd = openEventFd();
    const size = 8 << 20;
    const maxDatagram = 100_000; // above 64 KiB: read one by one, straight into the ring
    const slot = 8 + maxDatagram; // a datagram of maxDatagram bytes takes this much of the ring
    const state = new Int32Array(new SharedArrayBuffer(32));
    const worker = new Worker(RECV_WORKER_SOURCE, {
      eval: true,
      // Not the test runner's flags (see batched.ts).
      execArgv: [],
      workerData: { koffiPath: createRequire(import.meta.url).resolve('koffi') },
    });
    cleanups.push(async () => {
      Atomics.store(state, STOP, 1);
      signalEventFd(efd);
      Atomics.notify(state, R);
      await worker.terminate();
      closeFd(sv[0]);
      closeFd(sv[1]);
      closeFd(efd);
    });
    // The main thread's part, reduced: on each wake-up it takes everything (R = W) and may be woken again.
    worker.on('message', (m) => {
      if (m !== 1) return;
      Atomics.store(state, NOTIFIED, 0);
      Atomics.store(state, R, Atomics.load(state, W));
      Atomics.notify(state, R);
    });
    // Below the tail a wrap skips: until the main thread has passed the marker, that tail counts as unread.
    const readAhead = 50_000;
    const ring = new SharedArrayBuffer(size);
    worker.postMessage({
      job: 1,
      fd: sv[0],
      efd,
      maxDatagram,
      lingerMs: 0,
      pollTimeoutMs: 1000,
      readAhead,
      state: state.buffer,
      ring,
    });

    // Whole slots up to the last tail that cannot hold another: the batch ends there, and the worker goes idle.
    const full = Math.floor((size - slot) / slot) + 1;
    const tail = size - full * slot;
    expect(tail).toBeLessThan(slot);
    expect(tail).toBeGreaterThan(readAhead);
    for (let i = 0; i < full; i++) await sendAll(sv[1], Buffer.alloc(maxDatagram, i));
    // The worker wraps before it waits for more, with nothing new to publish: the wrap must reach the main
    // thread by itself (before, it stayed unpublished, and with the read-ahead below the tail reading stopped).
    await waitFor(() => Atomics.load(state, W) === 0 && Atomics.load(state, R) === 0, {
      timeoutMs: 20_000,
      what: 'the batch taken, then the wrap published and taken',
    });
    for (let i = 0; i < 10; i++) await sendAll(sv[1], Buffer.alloc(100, 7));
    // Each takes 8 + 100 bytes: all ten read into the ring from offset 0, and taken.
    await waitFor(() => Atomics.load(state, R) === 10 * 108, { timeoutMs: 10_000, what: 'the ten datagrams read' });
    expect(new Uint8Array(ring, 8, 100).every((b) => b === 7)).toBe(true);
  });
});
