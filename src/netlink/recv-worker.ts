/**
 * The body of the receive worker (batched.ts), kept as source text so it runs
 * with `eval` from src/ under the test runner and from dist/ alike. It waits
 * in poll(2), then drains the socket with non-blocking recvfrom(2) into a
 * batch buffer (each datagram as u32 length, u32 multicast groups, bytes
 * padded to 4) that it hands to the main thread whole, its memory
 * transferred, not copied. So the kernel queue drains while the main thread
 * is busy (garbage collection, a slow subscriber) and the main thread wakes
 * once per batch instead of once per datagram.
 *
 * Backpressure: `state[1]` counts the bytes handed over and not yet
 * consumed. Past `maxPendingBytes` the worker stops reading, the kernel's
 * queue fills, and the kernel counts what it drops (SO_MEMINFO), as it
 * would for a slow reader of any kind: memory stays bounded.
 * `state[0]` = 1 asks the worker to stop; it then closes nothing (the main
 * thread owns the fd and closes it once the worker has exited).
 */
export const RECV_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require(workerData.koffiPath);
const { fd, batchBytes, maxDatagram, maxPendingBytes } = workerData;
const state = new Int32Array(workerData.state);
const c = koffi.load('libc.so.6');
const poll = c.func('int poll(void *, unsigned long, int)');
const recvfrom = c.func('intptr_t recvfrom(int, void *, uintptr_t, int, void *, void *)');
const POLLIN = 1, MSG_TRUNC = 0x20, MSG_DONTWAIT = 0x40, EINTR = 4, EAGAIN = 11;
const pfd = Buffer.alloc(8);
pfd.writeInt32LE(fd, 0);
pfd.writeInt16LE(POLLIN, 4);
const addr = Buffer.alloc(12);
const alen = Buffer.alloc(4);
let batch = Buffer.allocUnsafeSlow(batchBytes);
let off = 0;
function flush() {
  if (off === 0) return;
  Atomics.add(state, 1, off);
  const ab = batch.buffer;
  parentPort.postMessage({ buf: ab, len: off }, [ab]);
  batch = Buffer.allocUnsafeSlow(batchBytes);
  off = 0;
}
while (Atomics.load(state, 0) === 0) {
  const pending = Atomics.load(state, 1);
  if (pending > maxPendingBytes) {
    Atomics.wait(state, 1, pending, 50);
    continue;
  }
  const r = poll(pfd, 1, 100);
  if (r <= 0) continue;
  for (let n = 0; n < 4096; n++) {
    if (batchBytes - off < 8 + maxDatagram) flush();
    alen.writeUInt32LE(12, 0);
    const got = Number(recvfrom(fd, batch.subarray(off + 8), maxDatagram, MSG_DONTWAIT | MSG_TRUNC, addr, alen));
    if (got < 0) {
      const e = koffi.errno();
      if (e !== EAGAIN && e !== EINTR) {
        flush();
        parentPort.postMessage({ errno: e });
      }
      break;
    }
    if (got > maxDatagram) {
      flush();
      parentPort.postMessage({ truncated: got });
      continue;
    }
    batch.writeUInt32LE(got, off);
    batch.writeUInt32LE(addr.readUInt32LE(8), off + 4);
    off += 8 + ((got + 3) & ~3);
  }
  flush();
}
`;
