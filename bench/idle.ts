/**
 * Idle cost (issue 18: "machines as small as a home router"): what long-running
 * flowgrab processes spend while nothing happens, beside `conntrack -E`
 * following the same quiet namespace. Each process is started, left to settle
 * (start-up, then V8's memory reducer, which collects a few seconds after
 * start), and measured over the same window: CPU and times scheduled, summed
 * over its threads from /proc/PID/task/TID/schedstat.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { BenchNetns, fmt, procSched } from './lib.js';

const cli = new URL('../bin/flowgrab.js', import.meta.url).pathname;
const SETTLE_MS = Number(process.env.FG_BENCH_IDLE_SETTLE_MS ?? 15_000);
const WINDOW_MS = Number(process.env.FG_BENCH_IDLE_WINDOW_MS ?? 10_000);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function benchIdle(): Promise<void> {
  const ns = new BenchNetns();
  const procs: { label: string; p: ChildProcess }[] = [];
  const start = (label: string, argv: string[]) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    procs.push({ label, p });
  };
  try {
    start('conntrack -E (baseline)', ['ip', 'netns', 'exec', ns.name, 'conntrack', '-E']);
    start('flowgrab conntrack --events', [
      process.execPath,
      cli,
      'conntrack',
      '--events',
      'new,destroy',
      '--netns',
      ns.name,
    ]);
    start('flowgrab export (NetFlow v9)', [
      process.execPath,
      cli,
      'export',
      '--netflow9',
      '127.0.0.1:9',
      '--netns',
      ns.name,
    ]);
    start('flowgrab nfqueue', [process.execPath, cli, 'nfqueue', '--queue', '4242', '--netns', ns.name]);
    await sleep(SETTLE_MS);
    for (const { label, p } of procs)
      if (p.exitCode !== null || p.pid === undefined) throw new Error(`${label} exited at start (${p.exitCode})`);
    const before = procs.map(({ p }) => procSched(p.pid as number));
    await sleep(WINDOW_MS);
    const after = procs.map(({ p }) => procSched(p.pid as number));
    console.log(
      `idle: CPU of each process (all threads, schedstat) over ${WINDOW_MS / 1000} s of a quiet namespace, after ${SETTLE_MS / 1000} s to settle`,
    );
    // conntrack -E sleeps in recv(2) and costs nothing: the figure is each process's own, as a share of one CPU.
    for (const [i, { label }] of procs.entries()) {
      const ms = after[i].ms - before[i].ms;
      const runs = after[i].runs - before[i].runs;
      const share = (100 * ms) / WINDOW_MS;
      console.log(
        `  ${label.padEnd(30)} ${fmt(ms, 2).padStart(7)} ms CPU (${fmt(share, 3)}% of a CPU), scheduled ${String(runs).padStart(4)} times`,
      );
    }
  } finally {
    for (const { p } of procs) p.kill('SIGINT');
    await sleep(500);
    for (const { p } of procs) if (p.exitCode === null) p.kill('SIGKILL');
    ns.close();
  }
}
