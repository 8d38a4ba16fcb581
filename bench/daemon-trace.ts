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
/** key (B·65536 + flow index) → [push, drain, flush, written]. */
let stamps = new Map<number, Float64Array>();
/** Keys drained and not yet flushed. */
let unflushed: Float64Array[] = [];

/** Each record's key, worked out once: every flow's buffer sees the same record object (16 flows, 2 looks each). */
const keys = new WeakMap<object, number>();
const keyOf = (r: unknown): number => {
  if (typeof r !== 'object' || r === null) return -1;
  let k = keys.get(r);
  if (k !== undefined) return k;
  const dst = (r as { orig?: { dst?: unknown } }).orig?.dst;
  if (typeof dst !== 'string' || !dst.startsWith('127.')) k = -1;
  else {
    const [, b, x, y] = dst.split('.').map(Number);
    k = b * 65536 + x * 254 + y - 1;
  }
  keys.set(r, k);
  return k;
};

/** FG_BENCH_DAEMON_STAGES=0: no stamps (they allocate per record, which the daemon's GC then pays); loop delay only. */
const stagesOn = process.env.FG_BENCH_DAEMON_STAGES !== '0';

const proto = FlowBuffer.prototype as { push(r: unknown): void };
const fanoutProto = Fanout.prototype as { next(r: unknown): void };
/** The buffers' outputs (Fanouts): a record they hand on is drained. */
const outs = new WeakSet<object>();
const push = proto.push;
if (stagesOn)
  proto.push = function (this: { out: object }, r: unknown) {
    outs.add(this.out);
    const k = keyOf(r);
    if (k >= 0 && !stamps.has(k)) {
      const s = new Float64Array(4).fill(Number.NaN);
      s[0] = now();
      stamps.set(k, s);
    }
    push.call(this, r);
  };
const next = fanoutProto.next;
if (stagesOn)
  fanoutProto.next = function (r: unknown) {
    if (outs.has(this)) {
      const s = stamps.get(keyOf(r));
      if (s && Number.isNaN(s[1])) {
        s[1] = now();
        unflushed.push(s);
      }
    }
    next.call(this, r);
  };

// Every flush tick's callbacks pass through flushSoon: the first of a tick stamps `flush`,
// a microtask after the tick (all its callbacks done) stamps `written`.
const wrapped = new WeakMap<() => void, () => void>();
let inTick = false;
const dproto = Daemon.prototype as { flushSoon(f: () => void): void };
const flushSoon = dproto.flushSoon;
if (stagesOn)
  dproto.flushSoon = function (f: () => void) {
    let w = wrapped.get(f);
    if (!w) {
      w = () => {
        if (!inTick && unflushed.length) {
          inTick = true;
          const due = unflushed;
          unflushed = [];
          const t = now();
          for (const s of due) s[2] = t;
          queueMicrotask(() => {
            const t2 = now();
            for (const s of due) s[3] = t2;
            inTick = false;
          });
        }
        f();
      };
      wrapped.set(f, w);
    }
    flushSoon.call(this, w);
  };

process.on('SIGUSR2', () => {
  const keys = [...stamps.keys()];
  const flat = new Float64Array(keys.length * 5);
  keys.forEach((k, i) => {
    flat[i * 5] = k;
    flat.set(stamps.get(k)!, i * 5 + 1);
  });
  const pct = (p: number) => eld.percentile(p) / 1e6;
  const text = JSON.stringify({
    loopDelay: { p50: pct(50), p99: pct(99), max: eld.max / 1e6 },
    stamps: Buffer.from(flat.buffer).toString('base64'),
  });
  writeFileSync(`${out}.tmp`, text);
  renameSync(`${out}.tmp`, out);
  stamps = new Map();
  unflushed = [];
  eld.reset();
});
