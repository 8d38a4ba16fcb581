/**
 * The body of the receive worker (batched.ts), kept as source text so it runs
 * with `eval` from src/ under the test runner and from dist/ alike. It waits
 * in poll(2), then drains the socket with non-blocking recvfrom(2) straight
 * into a ring in shared memory. Each datagram sits there as u32 length, u32
 * multicast groups and its bytes padded to 4; a length of 0xffffffff means
 * "continue at offset 0". The main thread is woken with one tiny message
 * only when it has taken everything up to its last wake-up (`state[3]`), so
 * under load it wakes once per batch, not once per datagram, and the kernel
 * queue keeps draining while the main thread collects garbage. When a
 * datagram arrives on an empty queue the worker sleeps `lingerMs` before it
 * drains (the kernel queues what arrives meanwhile; 0 for NFQUEUE, whose
 * packets wait on our verdict, and NFLOG, whose output packets are stamped on
 * arrival): at a few thousand
 * events a second each would otherwise cost a wake-up of its own, of the
 * worker (poll, a context switch) and of the main thread (a message, a loop
 * turn), several times the decoding. Small datagrams (events, up to 64
 * KiB each) are read up to 64 at a time with one recvmmsg(2) into a scratch
 * area and copied into the ring, once the ring is known to hold that many
 * of the largest; large ones (NFLOG/NFQUEUE packets) are read one by one
 * with recvfrom(2) straight to the ring's address. No Buffer per datagram.
 *
 * Only the kernel's datagrams (sender port 0) go into the ring: a local
 * process with CAP_NET_ADMIN in the socket's network namespace (a
 * container's root) can send to our port, and would otherwise forge events
 * and replies. What it sends is counted and reported at most once a second.
 *
 * The worker reads at most `readAhead` bytes ahead of the main thread (the
 * whole ring unless the transport was asked for less; below one datagram,
 * one at a time; for a batch, never less than its reserve).
 *
 * A worker serves one transport at a time (a job: its fd, ring and state);
 * once it has let go of one, batched.ts may hand it the next, so a new
 * subscription finds koffi loaded and the loop compiled. Every message
 * names its job (the wake-up is the job's number): one still queued from
 * the previous job is not the next transport's news.
 *
 * state: [0] stop, [1] write offset, [2] read offset, [3] main thread already
 * notified, [4] who may use the fd (0 nobody yet, 1 the worker, 2 the main
 * thread again, 3 the main thread, from a worker that failed), [5] the linger sleep's word. When the ring is full the
 * worker stops reading; the kernel's queue then fills and the kernel counts
 * what it drops (SO_MEMINFO), as for any slow reader.
 *
 * Closing is synchronous for the main thread (batched.ts): it sets stop,
 * writes the eventfd the worker polls beside the socket and wakes its
 * waits; the worker leaves the loop between two syscalls, sets [4] to 2 and
 * never touches the fd again, and the main thread closes it then. So the
 * kernel releases the socket (NFLOG group, NFQUEUE queue, memberships)
 * before close() returns, and no fd number is closed under a poll(2) that a
 * new fd could take. A worker that has not started yet finds [4] already 2
 * and exits without using the fd.
 */
export const RECV_WORKER_SOURCE = `
'use strict';
// Dynamic imports only: eval'd code runs as CommonJS, or as a module when the process has --input-type=module.
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { createRequire } = await import('node:module');
  const koffi = createRequire(workerData.koffiPath)(workerData.koffiPath);
  // From now on this thread may be ended from outside (batched.ts keeps it alive until then).
  parentPort.postMessage({ loaded: true });
  const OWNER = 4;
  // One job per transport, each a message (the worker kept for reuse serves the next).
  const serve = (job) => {
    // Retired (batched.ts): leave once loaded; terminate() during koffi's load aborts the whole process.
    if (job.retire) process.exit(0);
    const state = new Int32Array(job.state);
    if (Atomics.compareExchange(state, OWNER, 0, 1) !== 0) return;
    let ok = false;
    try {
      run(parentPort, job, state, koffi);
      ok = true;
    } finally {
      // Let go of the fd either way; 3: this worker is dying (run threw) and must serve no other job.
      Atomics.store(state, OWNER, ok ? 2 : 3);
      Atomics.notify(state, OWNER);
    }
  };
  parentPort.on('message', serve);
})();
function run(parentPort, workerData, state, koffi) {
  const { job, fd, efd, maxDatagram, lingerMs, pollTimeoutMs } = workerData;
  // Unpublished data past this is published at once: the main thread decodes a dump's parts while we read
  // the next, and is left with little to decode after the last (64 dump parts took it ~5 ms).
  const PUBLISH_BYTES = 256 * 1024;
  const STOP = 0, W = 1, R = 2, NOTIFIED = 3, LINGER = 5;
  const ring = workerData.ring;
  const size = ring.byteLength;
  const buf = Buffer.from(ring);
  const ring32 = new Int32Array(ring, 0, size >> 2);
  const { poll, recvfrom, recvmmsg } = libc(koffi);
  const base = Number(koffi.address(buf));
  if (!Number.isSafeInteger(base)) throw new Error('ring address beyond 2^53');
  const POLLIN = 1, MSG_TRUNC = 0x20, MSG_DONTWAIT = 0x40, EINTR = 4, EAGAIN = 11, WRAP = 0xffffffff;
  const SKIP = 0x80000000;
  // Datagrams of up to 64 KiB: up to BATCH per recvmmsg(2). Small ones (events) go into a scratch area and
  // are copied into the ring, packed. Full ones (dump parts, which nearly fill maxDatagram) are read straight
  // into the ring, a slot of \`need\` bytes each, and what one leaves of its slot becomes a skip record (a
  // length of SKIP + n: n bytes to pass over); the copy had cost a dump's reader, its slowest thread, 4%.
  const BATCH = maxDatagram <= 65536 ? Math.max(1, Math.min(64, Math.floor((512 * 1024) / maxDatagram))) : 0;
  const direct = BATCH > 0 && workerData.fullDatagrams === true;
  const need = 8 + ((maxDatagram + 3) & ~3) + (direct ? 8 : 0);
  const mm = BATCH > 0 ? mmsgArea(koffi, BATCH, maxDatagram, direct) : undefined;
  // A batch needs room for its reserve too (slots()), or the loop would spin without reading. One by one, a
  // read-ahead below one datagram means one at a time (nfqueue: the kernel's queue holds the rest, fail-open).
  const readAhead = mm ? Math.max(workerData.readAhead, 4 * need) : workerData.readAhead;
  // The socket and the eventfd the main thread writes to stop us.
  const pfd = Buffer.alloc(16);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  pfd.writeInt32LE(efd, 8);
  pfd.writeInt16LE(POLLIN, 12);
  const addr = Buffer.alloc(12);
  const alen = Buffer.alloc(4);
  let w = 0;
  let unpublished = 0, unpublishedBytes = 0;
  // Datagrams not from the kernel, dropped since the last report, and the port of the last one.
  let foreign = 0, foreignPort = 0, foreignAt = 0;
  function reportForeign() {
    if (foreign === 0 || Date.now() - foreignAt < 1000) return;
    parentPort.postMessage({ job, foreign, port: foreignPort });
    foreign = 0;
    foreignAt = Date.now();
  }
  function publish() {
    if (unpublished === 0) return;
    unpublished = 0;
    unpublishedBytes = 0;
    Atomics.store(state, W, w);
    if (Atomics.compareExchange(state, NOTIFIED, 0, 1) === 0) parentPort.postMessage(job);
  }
  /**
   * Room for one more datagram at w, wrapping to 0 when the tail is too short; false when the ring is full
   * or holds readAhead bytes the main thread has not taken.
   */
  function room() {
    const r = Atomics.load(state, R);
    if ((w >= r ? w - r : size - r + w) >= readAhead) return false;
    if (w >= r) {
      if (size - w - (r === 0 ? 4 : 0) >= need) return true;
      if (r - 4 < need) return false;
      buf.writeUInt32LE(WRAP, w);
      w = 0;
      // Published at once: until the main thread has passed the marker, the skipped tail counts as unread, and
      // if nothing more arrives nothing else publishes it (with readAhead below the tail, reading would stop).
      unpublished++;
      publish();
      return true;
    }
    return r - w - 4 >= need;
  }
  /** How many datagrams of up to maxDatagram bytes surely fit in the ring now (a wrap wastes less than one). */
  function slots() {
    const r = Atomics.load(state, R);
    const used = w >= r ? w - r : size - r + w;
    const free = Math.min(readAhead - used, size - used - 8);
    return Math.max(0, Math.floor(free / need) - 2);
  }
  /** Direct reads: how many slots lie between w and the end of the free space, without a wrap (at least 1 after room()). */
  function contiguous() {
    const r = Atomics.load(state, R);
    const used = w >= r ? w - r : size - r + w;
    const free = Math.min(readAhead - used, w >= r ? size - w - (r === 0 ? 4 : 0) : r - w - 4);
    return Math.max(1, Math.floor(free / need));
  }
  /** Direct reads: points the next recvmmsg's k buffers at k consecutive slots from w. */
  function aim(k) {
    for (let i = 0; i < k; i++) {
      const a = base + w + i * need + 8;
      mm.iov.writeUInt32LE(a % 4294967296, i * 16);
      mm.iov.writeUInt32LE(Math.floor(a / 4294967296), i * 16 + 4);
    }
  }
  /** Counts a datagram now in the ring, and publishes every 64 of them or PUBLISH_BYTES. */
  function added(len) {
    unpublishedBytes += len;
    if (++unpublished >= 64 || unpublishedBytes >= PUBLISH_BYTES) publish();
  }
  /** A read that failed: nothing queued (EAGAIN) or interrupted is no news; anything else is reported. */
  function readFailed() {
    const e = koffi.errno();
    if (e === EAGAIN || e === EINTR) return;
    publish();
    parentPort.postMessage({ job, errno: e });
  }
  /** Copies datagram i of the last recvmmsg into the ring (room is known: slots()), or reports it truncated. */
  function take(i) {
    const len = mm.hdrs.readUInt32LE(i * 64 + 56);
    if (!ours(i, len)) return;
    room();
    buf.writeUInt32LE(len, w);
    buf.writeUInt32LE(mm.names.readUInt32LE(i * 12 + 8), w + 4);
    // Word by word (both sides 4-aligned; the padding comes along): TypedArray#set needed a view per datagram,
    // and into shared memory it copies with V8's relaxed memmove, 0.1 µs an event between them (bench export).
    const words = mm.words;
    const from = (i * mm.stride) >> 2;
    const to = (w + 8) >> 2;
    const n = (len + 3) >> 2;
    for (let j = 0; j < n; j++) ring32[to + j] = words[from + j];
    w += 8 + ((len + 3) & ~3);
    if (w === size) w = 0;
    added(len);
  }
  /**
   * Whether datagram i of the last recvmmsg (len bytes) is the kernel's and whole. sockaddr_nl: family, pad,
   * nl_pid (the sender's port: 0 for the kernel), nl_groups. The sender first: an oversized datagram of
   * another process's is dropped as foreign, never reported as a truncated one of ours.
   */
  function ours(i, len) {
    const sender = mm.names.readUInt32LE(i * 12 + 4);
    if (sender !== 0) {
      foreign++;
      foreignPort = sender;
      return false;
    }
    if (len > maxDatagram) {
      publish();
      parentPort.postMessage({ job, truncated: len });
      return false;
    }
    return true;
  }
  /**
   * Direct reads: datagram i of the last recvmmsg, read in place into the slot at w. Its header goes in
   * front; when another slot follows (more), a skip record covers the rest of this one (all of it for a
   * datagram not kept). The last one's slot ends where it does.
   */
  function place(i, more) {
    const len = mm.hdrs.readUInt32LE(i * 64 + 56);
    const slotEnd = w + need;
    if (ours(i, len)) {
      buf.writeUInt32LE(len, w);
      buf.writeUInt32LE(mm.names.readUInt32LE(i * 12 + 8), w + 4);
      w += 8 + ((len + 3) & ~3);
      added(len);
    } else if (!more) return;
    if (more) {
      buf.writeUInt32LE(SKIP + (slotEnd - w - 8), w);
      w = slotEnd;
    }
    if (w === size) w = 0;
  }
  let idle = true;
  while (Atomics.load(state, STOP) === 0) {
    reportForeign();
    if (!room()) {
      publish();
      Atomics.wait(state, R, Atomics.load(state, R), 50);
      continue;
    }
    if (idle) {
      // close() and the exit hook (process.exit) wake us through the eventfd; the timeout is a safety net for
      // an exit that never ran its hooks, and short while foreign datagrams wait to be reported.
      if (poll(pfd, 2, foreign > 0 ? Math.min(1000, pollTimeoutMs) : pollTimeoutMs) <= 0 || Atomics.load(state, STOP) !== 0)
        continue;
      // Something arrived on an empty queue: let more join it before draining (see the file comment).
      if (lingerMs > 0) Atomics.wait(state, LINGER, 0, lingerMs);
      idle = false;
    }
    if (mm) {
      // Many datagrams per syscall: the ring is known to hold k of the largest before reading them.
      for (let n = 0; n < 1024 && Atomics.load(state, STOP) === 0; ) {
        if (direct && !room()) break;
        const k = Math.min(BATCH, direct ? contiguous() : slots());
        if (k === 0) break;
        if (direct) aim(k);
        const got = Number(recvmmsg(fd, mm.address, k, MSG_DONTWAIT | MSG_TRUNC, null));
        if (got < 0) {
          readFailed();
          idle = true;
          break;
        }
        if (direct) for (let i = 0; i < got; i++) place(i, i < got - 1);
        else for (let i = 0; i < got; i++) take(i);
        n += got;
        // Fewer than asked: the queue is empty.
        if (got < k) {
          idle = true;
          break;
        }
      }
      publish();
      continue;
    }
    for (let n = 0; n < 1024 && Atomics.load(state, STOP) === 0; n++) {
      if (n > 0 && !room()) break;
      alen.writeUInt32LE(12, 0);
      const got = Number(recvfrom(fd, base + w + 8, maxDatagram, MSG_DONTWAIT | MSG_TRUNC, addr, alen));
      if (got < 0) {
        readFailed();
        idle = true;
        break;
      }
      if (addr.readUInt32LE(4) !== 0) {
        // Not the kernel's (whatever its size): the next read overwrites it.
        foreign++;
        foreignPort = addr.readUInt32LE(4);
        continue;
      }
      if (got > maxDatagram) {
        publish();
        parentPort.postMessage({ job, truncated: got });
        continue;
      }
      buf.writeUInt32LE(got, w);
      buf.writeUInt32LE(addr.readUInt32LE(8), w + 4);
      w += 8 + ((got + 3) & ~3);
      if (w === size) w = 0;
      added(got);
    }
    publish();
  }
}
/** The calls the loop makes, bound once per worker (every job it serves uses the same). */
let bound;
function libc(koffi) {
  if (bound) return bound;
  const c = koffi.load('libc.so.6');
  bound = {
    poll: c.func('int poll(void *, unsigned long, int)'),
    // The buffer argument as an address: the shared ring never moves, and a subarray per datagram would be garbage.
    recvfrom: c.func('intptr_t recvfrom(int, uintptr_t, uintptr_t, int, void *, void *)'),
    recvmmsg: c.func('int recvmmsg(int, uintptr_t, unsigned int, int, void *)'),
  };
  return bound;
}
/**
 * The buffers of one recvmmsg(2) of up to count datagrams of size bytes: data, iovecs, sockaddr_nl names,
 * headers. The last one is kept: the next job of the same kind (one job runs at a time) takes it again.
 * A direct area has no data of its own: its iovecs are pointed into the ring before each read (aim()).
 */
let area;
function mmsgArea(koffi, count, size, direct) {
  if (area && area.count === count && area.size === size && area.direct === direct) return area;
  area = newArea(koffi, count, size, direct);
  return area;
}
function newArea(koffi, count, size, direct) {
  // Each datagram's space starts 4-aligned (take() copies words).
  const stride = (size + 3) & ~3;
  const data = Buffer.alloc(direct ? 0 : count * stride);
  const iov = Buffer.alloc(count * 16);
  const names = Buffer.alloc(count * 12);
  const hdrs = Buffer.alloc(count * 64);
  const d = direct ? 0 : Number(koffi.address(data)), v = Number(koffi.address(iov)), n = Number(koffi.address(names));
  for (let i = 0; i < count; i++) {
    iov.writeBigUInt64LE(BigInt(d + i * stride), i * 16);
    iov.writeBigUInt64LE(BigInt(size), i * 16 + 8);
    hdrs.writeBigUInt64LE(BigInt(n + i * 12), i * 64);
    hdrs.writeUInt32LE(12, i * 64 + 8); // msg_namelen: the kernel writes back 12 (sockaddr_nl) each time, set once
    hdrs.writeBigUInt64LE(BigInt(v + i * 16), i * 64 + 16);
    hdrs.writeBigUInt64LE(1n, i * 64 + 24);
  }
  // iov and names are referenced from hdrs by address only: kept here so they live as long as hdrs.
  const words = new Int32Array(data.buffer, data.byteOffset, data.length >> 2);
  return { count, size, stride, direct, data, words, iov, names, hdrs, address: Number(koffi.address(hdrs)) };
}
`;
