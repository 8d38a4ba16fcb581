/**
 * Conntrack benchmarks (issue: foundation). All figures are measured in the
 * same run against the same table, and printed as ratios to conntrack-tools.
 *  1. dump + full decode in-process vs `conntrack -L > /dev/null`   (goal ≤ 0.8×)
 *  2. `flowgrab conntrack --dump --json > /dev/null` vs `conntrack -L` (goal ≤ 1.25×), peak RSS (goal ≤ 150 MB)
 *  3. NEW events: highest rate followed with zero loss vs `conntrack -E`; CPU µs per event (goal ≤ 5)
 */
import { spawn } from 'node:child_process';
import { lastValueFrom } from 'rxjs';
import { count as rxCount } from 'rxjs/operators';
import { conntrack } from '../src/sources/conntrack/source.js';
import type { SourceNotice } from '../src/sources/notice.js';
import { BenchNetns, fmt, median, timeCommand } from './lib.js';

const ENTRIES = Number(process.env.FG_BENCH_ENTRIES ?? 100_000);
const RUNS = Number(process.env.FG_BENCH_RUNS ?? 5);
const cli = new URL('../src/cli/flowgrab.js', import.meta.url).pathname;

async function inProcessDump(ns: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const n = await lastValueFrom(conntrack({ dump: true, netns: ns }).pipe(rxCount()));
  if (n < ENTRIES) throw new Error(`dump saw ${n} entries, expected ≥ ${ENTRIES}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function dumpBench(ns: BenchNetns): Promise<void> {
  const ct: number[] = [];
  const ours: number[] = [];
  const cliMs: number[] = [];
  const cliRss: number[] = [];
  const ctRss: number[] = [];
  await inProcessDump(ns.name); // warm-up
  for (let i = 0; i < RUNS; i++) {
    const a = timeCommand(['ip', 'netns', 'exec', ns.name, 'conntrack', '-L']);
    ct.push(a.ms);
    ctRss.push(a.rssKiB);
    ours.push(await inProcessDump(ns.name));
    const b = timeCommand(['ip', 'netns', 'exec', ns.name, process.execPath, cli, 'conntrack', '--dump', '--json']);
    cliMs.push(b.ms);
    cliRss.push(b.rssKiB);
  }
  const c = median(ct);
  console.log(`dump of ${ns.count()} entries, median of ${RUNS} runs`);
  console.log(`  conntrack -L (whole process)          ${fmt(c)} ms   peak RSS ${fmt(median(ctRss) / 1024)} MB`);
  console.log(
    `  flowgrab in-process dump+decode       ${fmt(median(ours))} ms   ratio ${fmt(median(ours) / c, 2)}× (goal ≤ 0.8×)`,
  );
  console.log(
    `  flowgrab conntrack --dump --json      ${fmt(median(cliMs))} ms   ratio ${fmt(median(cliMs) / c, 2)}× (goal ≤ 1.25×)`,
  );
  console.log(`  flowgrab CLI peak RSS                 ${fmt(median(cliRss) / 1024)} MB (goal ≤ 150 MB)`);
}

/** Follows NEW events in-process while the generator creates `n` entries at `rate`/s. */
async function followOurs(ns: BenchNetns, n: number, rate: number, base: number) {
  let got = 0;
  let lost = 0;
  const sub = conntrack({
    events: ['new'],
    netns: ns.name,
    notices: { next: (x: SourceNotice) => x.kind === 'loss' && (lost += x.count ?? 0) },
  }).subscribe(() => got++);
  const cpu0 = process.cpuUsage();
  const secs = await ns.generate(n, rate, base);
  const deadline = Date.now() + 3000;
  while (got + lost < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const cpu = process.cpuUsage(cpu0);
  sub.unsubscribe();
  return { got, lost, secs, cpuUsPerEvent: (cpu.user + cpu.system) / Math.max(got, 1) };
}

/** The same with `conntrack -E -e NEW` (default buffers), counting its output lines. */
async function followConntrackE(ns: BenchNetns, n: number, rate: number, base: number) {
  const p = spawn('/usr/bin/time', [
    '-f',
    '%U %S',
    'ip',
    'netns',
    'exec',
    ns.name,
    'conntrack',
    '-E',
    '-e',
    'NEW',
    '-o',
    'id',
  ]);
  let lines = 0;
  let err = '';
  p.stdout.on('data', (d: Buffer) => {
    for (const b of d) if (b === 10) lines++;
  });
  p.stderr.on('data', (d) => (err += d));
  await new Promise((r) => setTimeout(r, 300));
  const secs = await ns.generate(n, rate, base);
  const deadline = Date.now() + 3000;
  while (lines < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const exited = new Promise((r) => p.on('exit', r));
  // GNU time ignores SIGINT while it waits: signal its child, conntrack itself.
  spawn('pkill', ['-INT', '-P', String(p.pid)]);
  await exited;
  const [u, s] = (err.trim().split('\n').pop() ?? '0 0').split(' ').map(Number);
  return { got: lines, secs, cpuUsPerEvent: ((u + s) * 1e6) / Math.max(lines, 1) };
}

async function eventBench(ns: BenchNetns): Promise<void> {
  const n = 40_000;
  console.log(`NEW events: ${n} new UDP flows per round, in-process listener vs conntrack -E (default buffers)`);
  let base = 10;
  let bestZeroLoss = 0;
  for (const rate of [10_000, 20_000, 40_000, 80_000, 0]) {
    ns.exec(['conntrack', '-F']);
    const ours = await followOurs(ns, n, rate, base);
    base += 1;
    ns.exec(['conntrack', '-F']);
    const theirs = await followConntrackE(ns, n, rate, base);
    base += 1;
    const achieved = Math.round(n / ours.secs);
    if (ours.got === n && ours.lost === 0) bestZeroLoss = Math.max(bestZeroLoss, achieved);
    console.log(
      `  rate ${rate ? `${rate}/s` : 'flat out'} (achieved ${achieved}/s): flowgrab got ${ours.got}, lost ${ours.lost} (reported), ${fmt(ours.cpuUsPerEvent, 2)} µs CPU/event | conntrack -E got ${theirs.got} (lost ${n - theirs.got}), ${fmt(theirs.cpuUsPerEvent, 2)} µs CPU/event`,
    );
  }
  console.log(`  highest rate followed by flowgrab with zero loss: ${bestZeroLoss}/s`);
}

export async function benchConntrack(): Promise<void> {
  const ns = new BenchNetns();
  try {
    const secs = await ns.generate(ENTRIES, 0, 1);
    console.log(`created ${ns.count()} conntrack entries in ${fmt(secs, 2)} s (netns ${ns.name})`);
    await dumpBench(ns);
    await eventBench(ns);
  } finally {
    ns.close();
  }
}
