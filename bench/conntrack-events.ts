/**
 * Conntrack event benches (issue 18), ratios to `conntrack -E` in the same run:
 *  - NEW events at fixed rates up to the generator's maximum: flowgrab (batched reader, the default) on
 *    a fresh subscription and warm (after an unmeasured flood, as a long-running follower), flowgrab with
 *    the main-thread reader, flowgrab reliable, `conntrack -E` with its default buffer and with 8 MiB;
 *    loss counted on every side, CPU per event from /proc (schedstat, ns); medians of the runs.
 *  - A burst of DESTROYs (`conntrack -D` of the whole table): loss and repeats, normal vs reliable.
 * Runs: `--runs N` or FG_BENCH_RUNS (default 5; 1 for a quick look). Runs against an older flowgrab
 * too: modes its options reject are skipped.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiveWorkers } from '../src/netlink/batched.js';
import { entryKey } from '../src/sources/conntrack/ended.js';
import { parseConntrackOptions } from '../src/sources/conntrack/options.js';
import type { ConntrackRecord } from '../src/sources/conntrack/record.js';
import { conntrack } from '../src/sources/conntrack/source.js';
import type { SourceNotice } from '../src/sources/notice.js';
import { processCpu, total } from './conntrack-proc.js';
import type { BenchNetns } from './lib.js';
import { fmt, median, procCpuMs } from './lib.js';

const EVENTS = Number(process.env.FG_BENCH_EVENTS ?? 20_000);
const BURST = Number(process.env.FG_BENCH_BURST ?? 60_000);
const RATES = (process.env.FG_BENCH_RATES ?? '10000,25000,0').split(',').map(Number);
const runsArg = process.argv.indexOf('--runs');
const RUNS = Math.max(1, Number(runsArg >= 0 ? process.argv[runsArg + 1] : (process.env.FG_BENCH_RUNS ?? 5)) || 1);

interface Result {
  got: number;
  lost: number;
  /** What the kernel says it dropped for this reader. */
  drops: number;
  cpuMs: number;
  secs: number;
}

const supported = (o: Record<string, unknown>) => {
  try {
    parseConntrackOptions(o);
    return true;
  } catch {
    return false;
  }
};

const until = async (done: () => boolean, ms: number, every = 50) => {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, every));
};

/**
 * flowgrab following NEW events in this process. `warm`: first a flood of as many events on the same
 * subscription, not measured, as a long-running follower has had (its code compiled by V8, its worker
 * thread's too); otherwise the flood measured is the first the subscription sees.
 */
async function followOurs(
  ns: BenchNetns,
  opts: Record<string, unknown>,
  rate: number,
  base: number,
  warm = false,
): Promise<Result> {
  let got = 0;
  let lost = 0;
  const sub = conntrack({
    events: ['new'],
    netns: ns.name,
    ...opts,
    notices: { next: (x: SourceNotice) => x.kind === 'loss' && (lost += x.count ?? 0) },
  }).subscribe(() => got++);
  await new Promise((r) => setTimeout(r, 200));
  if (warm) {
    await ns.generate(EVENTS, 0, base >= 110 ? base - 100 : base + 100);
    await until(() => got + lost >= EVENTS, 3000);
    got = 0;
    lost = 0;
  }
  // From the moment the generator is forked: forking this (large) process costs it CPU that is not flowgrab's.
  // Nanoseconds from schedstat (every thread here lives through the window): /proc/PID/stat's 10 ms ticks
  // made 20 000 events' 40-60 ms of CPU read as 2.0 or 2.5 µs an event, nothing between.
  let c0 = procCpuMs();
  const secs = await ns.generate(EVENTS, rate, base, () => {
    c0 = procCpuMs();
  });
  await until(() => got + lost >= EVENTS, 3000);
  const cpuMs = procCpuMs() - c0;
  sub.unsubscribe();
  return { got, lost: EVENTS - got, drops: lost, cpuMs, secs };
}

/**
 * `conntrack -E -e NEW` (ip netns exec execs it: the child's pid is conntrack's), its output to a file so
 * that nothing of ours can slow it down; delivered = lines written.
 */
async function followConntrackE(ns: BenchNetns, extra: string[], rate: number, base: number): Promise<Result> {
  const file = join(tmpdir(), `fgbench-ct-e-${process.pid}-${base}`);
  const fd = openSync(file, 'w');
  const p = spawn('ip', ['netns', 'exec', ns.name, 'conntrack', '-E', '-e', 'NEW', '-o', 'id', ...extra], {
    stdio: ['ignore', fd, 'ignore'],
  });
  closeSync(fd);
  const exited = new Promise((r) => p.on('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  const pid = p.pid ?? 0;
  const c0 = procCpuMs(pid);
  const secs = await ns.generate(EVENTS, rate, base);
  // About 40 bytes a line: wait until the file stops growing (or holds them all).
  let size = -1;
  await until(
    () => {
      const now = statSync(file).size;
      const still = now === size;
      size = now;
      return still;
    },
    5000,
    300,
  );
  const cpuMs = procCpuMs(pid) - c0;
  const drops = kernelDrops(pid);
  p.kill('SIGINT');
  await exited;
  let lines = 0;
  for (const b of readFileSync(file)) if (b === 10) lines++;
  rmSync(file, { force: true });
  return { got: lines, lost: EVENTS - lines, drops, cpuMs, secs };
}

/** What the kernel dropped on a process's netfilter netlink sockets (the Drops column of its /proc/PID/net/netlink). */
function kernelDrops(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  let drops = 0;
  for (const row of readFileSync(`/proc/${pid}/net/netlink`, 'utf8').trim().split('\n').slice(1)) {
    const f = row.trim().split(/\s+/); // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    if (f[1] === '12' && inodes.has(f[9])) drops += Number(f[8]);
  }
  return drops;
}

const us = (r: Result) => (r.cpuMs * 1000) / Math.max(r.got, 1);

async function rateBench(ns: BenchNetns): Promise<void> {
  const readers: { label: string; run: (rate: number, base: number) => Promise<Result> }[] = [
    { label: 'conntrack -E (default buffer)', run: (r, b) => followConntrackE(ns, [], r, b) },
    { label: 'conntrack -E -b 8 MiB', run: (r, b) => followConntrackE(ns, ['-b', String(8 << 20)], r, b) },
    { label: 'flowgrab (default: batched reader)', run: (r, b) => followOurs(ns, {}, r, b) },
    { label: 'flowgrab, warm (batched reader)', run: (r, b) => followOurs(ns, {}, r, b, true) },
  ];
  for (const [label, o] of [
    ['flowgrab, main-thread reader', { batchedReceive: false }],
    ['flowgrab reliable', { reliable: true }],
  ] as const) {
    if (supported(o)) readers.push({ label, run: (r, b) => followOurs(ns, o, r, b) });
  }
  console.log(
    `NEW events: ${EVENTS} new UDP flows per round; CPU per delivered event from /proc; lost = not delivered; median of ${RUNS} runs (lost: median, max)`,
  );
  let base = 10;
  for (const rate of RATES) {
    const rows: Result[][] = readers.map(() => []);
    let slowest = 0;
    for (let run = 0; run < RUNS; run++) {
      // Readers take turns within each run, so a machine getting busier hits them alike.
      for (const [i, rd] of readers.entries()) {
        ns.exec(['conntrack', '-F']);
        // 127.B.x.y holds 65 024 flows: a fresh B per round, wrapping well below 127.255.
        const r = await rd.run(rate, 10 + (base++ % 200));
        rows[i].push(r);
        slowest = Math.max(slowest, r.secs);
      }
    }
    const ref = median(rows[0].map(us));
    const achieved = Math.round(EVENTS / slowest);
    console.log(`  rate ${rate ? `${rate}/s` : 'flat out'} (generator reached ≥ ${achieved}/s):`);
    for (const [i, rd] of readers.entries()) {
      const rs = rows[i];
      const u = median(rs.map(us));
      const lost = rs.map((r) => r.lost);
      console.log(
        `    ${rd.label.padEnd(30)} got ${String(median(rs.map((r) => r.got))).padStart(6)}, lost ${String(median(lost)).padStart(6)} (max ${String(Math.max(...lost)).padStart(6)}; kernel drops ${String(median(rs.map((r) => r.drops))).padStart(6)}), ${fmt(u, 2).padStart(6)} µs CPU/event (${fmt(u / ref, 2)}× conntrack -E)`,
      );
    }
  }
}

async function burstBench(ns: BenchNetns): Promise<void> {
  const modes = [['normal', {}] as const, ['reliable', { reliable: true }] as const].filter(([, o]) => supported(o));
  // One mode at a time, each with a burst of its own: a reliable listener makes the kernel send the DESTROYs it
  // could not queue again, to every listener, so a normal one beside it would get them too.
  for (const [label, o] of modes) {
    ns.exec(['conntrack', '-F']);
    await ns.generate(BURST, 0, 60);
    const s = { recs: [] as ConntrackRecord[], lost: 0 };
    const sub = conntrack({
      events: ['destroy'],
      netns: ns.name,
      ...o,
      notices: { next: (x: SourceNotice) => x.kind === 'loss' && (s.lost += x.count ?? 0) },
    }).subscribe((r) => s.recs.push(r));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    ns.exec(['conntrack', '-D', '-p', 'udp']);
    // Normal mode is done once every entry is delivered or counted lost; reliable mode only once all are delivered.
    await until(() => s.recs.length + (label === 'reliable' ? 0 : s.lost) >= BURST, 45_000);
    const took = Date.now() - t0;
    sub.unsubscribe();
    // An entry is its id and tuple (ids collide); a repeat is a second DESTROY for one, real or inferred.
    const keys = s.recs.map(entryKey);
    const real = s.recs.filter((r) => !r.resync).length;
    console.log(
      `DESTROY burst, ${label.padEnd(8)}: conntrack -D of ${BURST} UDP entries (default buffers), settled after ${took} ms: real DESTROYs ${real}, inferred ${s.recs.length - real}, repeats ${keys.length - new Set(keys).size}, lost ${BURST - s.recs.length}; kernel drops reported ${s.lost}${label === 'reliable' ? ' (reliable: queued again by the kernel, not lost)' : ''}`,
    );
  }
}

/**
 * What a subscription costs before its first event: a NEW-event subscription opened, given time to start, and
 * closed, 10 times, with a new receive worker each time and with the one the last subscription left (batched.ts).
 * Process CPU (all threads) per cycle, less the idle wait's.
 */
async function subscribeBench(ns: BenchNetns): Promise<void> {
  const cycle = async () => {
    const c0 = total(processCpu('self'));
    const sub = conntrack({ events: ['new'], netns: ns.name }).subscribe();
    await new Promise((r) => setTimeout(r, 150));
    sub.unsubscribe();
    return total(processCpu('self')) - c0;
  };
  const kept = receiveWorkers.idleMax;
  const cost: Record<string, number[]> = { 'a new worker': [], 'the worker the last one left': [] };
  try {
    await cycle(); // modules loaded, code warm
    for (let i = 0; i < 10; i++) {
      receiveWorkers.idleMax = 0;
      await cycle(); // leaves none behind
      cost['a new worker'].push(await cycle());
      receiveWorkers.idleMax = kept;
      await cycle(); // leaves one behind
      cost['the worker the last one left'].push(await cycle());
    }
  } finally {
    receiveWorkers.idleMax = kept;
  }
  const line = Object.entries(cost)
    .map(([what, ms]) => `${what} ${fmt(median(ms), 0)} ms`)
    .join(', ');
  console.log(`Subscribing (NEW events, opened, 150 ms, closed), CPU per subscription, median of 10: ${line}`);
}

/** FG_BENCH_EVENTS_PART=subscribe|rates|burst runs that part alone. */
export async function benchConntrackEvents(ns: BenchNetns): Promise<void> {
  const part = process.env.FG_BENCH_EVENTS_PART;
  if (!part || part === 'subscribe') await subscribeBench(ns);
  if (!part || part === 'rates') await rateBench(ns);
  if (!part || part === 'burst') await burstBench(ns);
}
