/**
 * Loaded into the benchmarked flowgrabd with `--import` (bench/daemon.ts):
 * where a record's latency goes inside the daemon. For every bench flow
 * (a record whose orig.dst is 127.B.X.Y) it stamps, in ns of
 * CLOCK_MONOTONIC (the generator's and the clients' clock):
 *  - push: the record reached a flow's buffer (kernel → netlink reader →
 *    decode → rxjs graph, all synchronous from the socket read);
 *  - drain: the buffer handed it on (its setImmediate);
 *  - flush: the flush tick that encodes and writes it to the clients began;
 *  - written: that tick had written it to every client.
 * The first flow to see a record stamps it (all flows share the source).
 * It also keeps the event loop's delay (perf_hooks.monitorEventLoopDelay).
 * SIGUSR2 writes them as JSON to the file named by FG_BENCH_DAEMON_TRACE
 * (complete when it appears: written aside, then renamed) and starts afresh.
 * Bench-only: nothing in src knows about it.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const out = process.env.FG_BENCH_DAEMON_TRACE;
if (!out) throw new Error('daemon-trace: FG_BENCH_DAEMON_TRACE (the file to write) is not set');

const dist = new URL('..', import.meta.url).href; // dist/
const { FlowBuffer } = await import(`${dist}src/flow/buffer.js`);
const { Fanout } = await import(`${dist}src/sources/fanout.js`);
const { Daemon } = await import(`${dist}src/daemon/server.js`);

const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();

const now = () => Number(process.hrtime.bigint());
/**
 * The stamps, allocated per address block B (127.B.x.y), never per record: an allocation per record would make
 * the daemon's garbage collector, whose pauses are part of what is measured, busier than it is without us.
 * Flow index i of block B has [push, drain, flush, written] at 4·i of stamps.get(B) (NaN: not yet).
 */
let stamps = new Map<number, Float64Array>();
const PER_BLOCK = 65536;
/** Offsets (B·PER_BLOCK + i) drained and not yet flushed; reused, emptied by the flush tick. */
const unflushed: number[] = [];

/** The stamps of a record's flow (block, of address block blockB) and its index there (4·i), or -1: not a bench flow. */
let block: Float64Array = new Float64Array(0);
let blockB = -1;
const slotOf = (r: unknown): number => {
  const dst = (r as { orig?: { dst?: unknown } } | null)?.orig?.dst;
  if (typeof dst !== 'string' || !dst.startsWith('127.')) return -1;
  // 127.B.X.Y parsed by hand: split() would allocate per record.
  let b = 0;
  let x = 0;
  let y = 0;
  let j = 0;
  for (let i = 4; i < dst.length; i++) {
    const c = dst.charCodeAt(i);
    if (c === 46) j++;
    else if (j === 0) b = b * 10 + c - 48;
    else if (j === 1) x = x * 10 + c - 48;
    else y = y * 10 + c - 48;
  }
  if (b !== blockB) {
    let t = stamps.get(b);
    if (!t) {
      t = new Float64Array(PER_BLOCK * 4).fill(Number.NaN);
      stamps.set(b, t);
    }
    block = t;
    blockB = b;
  }
  return (x * 254 + y - 1) * 4;
};

/** FG_BENCH_DAEMON_STAGES=0: no stamps; loop delay only. */
const stagesOn = process.env.FG_BENCH_DAEMON_STAGES !== '0';

const proto = FlowBuffer.prototype as { push(r: unknown): void };
const fanoutProto = Fanout.prototype as { next(r: unknown): void };
/** The buffers' outputs (Fanouts): a record they hand on is drained. */
const outs = new WeakSet<object>();
const push = proto.push;
if (stagesOn)
  proto.push = function (this: { out: object }, r: unknown) {
    outs.add(this.out);
    const i = slotOf(r);
    if (i >= 0 && Number.isNaN(block[i])) block[i] = now();
    push.call(this, r);
  };
const next = fanoutProto.next;
if (stagesOn)
  fanoutProto.next = function (r: unknown) {
    if (outs.has(this)) {
      const i = slotOf(r);
      if (i >= 0 && Number.isNaN(block[i + 1])) {
        block[i + 1] = now();
        unflushed.push(blockB * PER_BLOCK + i / 4);
      }
    }
    next.call(this, r);
  };
const stampAll = (keys: number[], k: number, t: number) => {
  for (const key of keys) {
    const s = stamps.get(Math.floor(key / PER_BLOCK));
    if (s) s[(key % PER_BLOCK) * 4 + k] = t;
  }
};

// Every flush tick's callbacks pass through flushSoon: the first of a tick stamps `flush`,
// a microtask after the tick (all its callbacks done) stamps `written`.
const wrapped = new WeakMap<() => void, () => void>();
let inTick = false;
/** Keys stamped `flush` in this tick, waiting for `written`. */
let ticking: number[] = [];
const stampWritten = () => {
  stampAll(ticking, 3, now());
  ticking = [];
  inTick = false;
};
/** The flush callback f, stamping the tick it runs in (made once per f: none per record). */
const wrap = (f: () => void) => () => {
  if (!inTick && unflushed.length) {
    inTick = true;
    ticking = unflushed.splice(0);
    stampAll(ticking, 2, now());
    queueMicrotask(stampWritten);
  }
  f();
};
const dproto = Daemon.prototype as { flushSoon(f: () => void): void };
const flushSoon = dproto.flushSoon;
if (stagesOn)
  dproto.flushSoon = function (f: () => void) {
    let w = wrapped.get(f);
    if (!w) wrapped.set(f, (w = wrap(f)));
    flushSoon.call(this, w);
  };

process.on('SIGUSR2', () => {
  const rows: number[] = [];
  for (const [b, t] of stamps)
    for (let i = 0; i < PER_BLOCK; i++)
      if (!Number.isNaN(t[i * 4])) rows.push(b * PER_BLOCK + i, t[i * 4], t[i * 4 + 1], t[i * 4 + 2], t[i * 4 + 3]);
  const flat = Float64Array.from(rows);
  const pct = (p: number) => eld.percentile(p) / 1e6;
  const text = JSON.stringify({
    loopDelay: { p50: pct(50), p99: pct(99), max: eld.max / 1e6 },
    stamps: Buffer.from(flat.buffer).toString('base64'),
  });
  writeFileSync(`${out}.tmp`, text);
  renameSync(`${out}.tmp`, out);
  stamps = new Map();
  blockB = -1;
  unflushed.length = 0;
  eld.reset();
});
