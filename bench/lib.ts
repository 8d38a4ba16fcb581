/** Small helpers shared by the benchmarks: a throw-away netns, timing, medians. */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { floodUdp } from '../src/testing/flood.js';

export const sh = (argv: string[], input?: string): string =>
  execFileSync(argv[0], argv.slice(1), { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).toString();

const open = new Set<BenchNetns>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const ns of open) ns.close();
    process.exit(130);
  });
}

export class BenchNetns {
  readonly name = `fgbench${process.pid}`;
  constructor() {
    sh(['ip', 'netns', 'add', this.name]);
    open.add(this);
    this.exec(['ip', 'link', 'set', 'lo', 'up']);
    for (const [k, v] of [
      ['nf_conntrack_acct', '1'],
      ['nf_conntrack_timestamp', '1'],
      ['nf_conntrack_events', '1'],
      ['nf_conntrack_udp_timeout', '900'],
    ]) {
      this.exec(['sysctl', '-qw', `net.netfilter.${k}=${v}`]);
    }
    // Conntrack only runs while a rule needs it.
    this.exec([
      'nft',
      'add table inet b; add chain inet b o { type filter hook output priority 0; }; add rule inet b o ct state new counter',
    ]);
  }
  exec(argv: string[]): string {
    return sh(['ip', 'netns', 'exec', this.name, ...argv]);
  }
  /**
   * Runs the UDP flow generator inside the namespace; resolves with its elapsed seconds. `onSpawned` runs once
   * the generator process is forked, before it sends: CPU measured from then on leaves out the fork.
   */
  generate(count: number, rate: number, base: number, onSpawned?: () => void): Promise<number> {
    return floodUdp(this.name, { count, rate, base }, onSpawned);
  }
  count(): number {
    return Number(this.exec(['cat', '/proc/sys/net/netfilter/nf_conntrack_count']).trim());
  }
  close(): void {
    open.delete(this);
    try {
      sh(['ip', 'netns', 'del', this.name]);
    } catch {
      // already gone
    }
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Wall time of a whole command in ms (spawned, output to /dev/null) and its peak RSS in KiB via GNU time. */
export function timeCommand(argv: string[]): { ms: number; rssKiB: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  const err = r.stderr.toString();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const rss = Number(err.trim().split('\n').pop());
  return { ms, rssKiB: rss };
}

export const fmt = (x: number, d = 1) => x.toFixed(d);

/**
 * CPU time (user + system, every thread) a process has used so far, in ms, from /proc/PID/task/TID/schedstat
 * (nanoseconds; /proc/PID/stat counts in 10 ms ticks, too coarse for a short run). `pid` defaults to this process.
 */
export function procCpuMs(pid: number | 'self' = 'self'): number {
  return procSched(pid).ms;
}

/** procCpuMs and how many times the process's live threads were scheduled so far (schedstat's third field). */
export function procSched(pid: number | 'self' = 'self'): { ms: number; runs: number } {
  let ns = 0;
  let runs = 0;
  const dir = `/proc/${pid}/task`;
  for (const tid of readdirSync(dir)) {
    try {
      const f = readFileSync(`${dir}/${tid}/schedstat`, 'utf8').split(' ');
      ns += Number(f[0]);
      runs += Number(f[2]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return { ms: ns / 1e6, runs };
}

/**
 * Runs per figure (`npm run bench -- NAME --runs N`, or FG_BENCH_RUNS): each bench reports the median of
 * this many runs (at least 5, as the issue asks, unless told fewer).
 */
export function benchRuns(fallback = 5): number {
  const i = process.argv.indexOf('--runs');
  const n = Number(i > 0 ? process.argv[i + 1] : (process.env.FG_BENCH_RUNS ?? fallback));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--runs: expected a whole number ≥ 1, got ${process.argv[i + 1]}`);
  return n;
}

/** "met" or "NOT met", for a figure's goal. */
export const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/**
 * The same small workload timed in process CPU, for comparing runs across hours. This VM's speed moved 2-4x
 * within one afternoon (NEW events 13 vs 5 µs each, the same code), and node moved more than the C tools
 * beside it. Three parts: allocation with scavenges, a Map of string keys, and syscalls. Run in a process of its
 * own (machineCheckApart), so that it leaves the benchmark's heap and JIT as they were.
 */
export function machineCheck(): string {
  const part = (f: () => void) => {
    const t = procCpuMs();
    f();
    return procCpuMs() - t;
  };
  let keep: unknown[] = [];
  const alloc = part(() => {
    for (let i = 0; i < 2_000_000; i++) {
      keep.push({ i, s: `k${i & 1023}` });
      if (keep.length === 10_000) keep = [];
    }
  });
  const map = part(() => {
    const m = new Map<string, number>();
    for (let i = 0; i < 1_000_000; i++) {
      const k = `10.0.${(i >> 8) & 63}.${i & 255}`;
      m.set(k, (m.get(k) ?? 0) + 1);
    }
  });
  const sys = part(() => {
    for (let i = 0; i < 20_000; i++) statSync('/proc/self');
  });
  return `machine check (process CPU): allocation ${fmt(alloc, 0)} ms, string Map ${fmt(map, 0)} ms, 20 000 stat(2) ${fmt(sys, 0)} ms`;
}

/** machineCheck in a child process: its line, or why there is none. */
export function machineCheckApart(): string {
  const lib = new URL(import.meta.url).href;
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `import { machineCheck } from ${JSON.stringify(lib)}; console.log(machineCheck());`],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return r.status === 0 ? r.stdout.trim() : `machine check failed: ${(r.stderr || String(r.error)).trim()}`;
}
