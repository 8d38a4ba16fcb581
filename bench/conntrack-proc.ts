/**
 * Process CPU from /proc for the conntrack benches, the same way for both
 * sides: a running process's utime+stime (/proc/PID/stat, all its threads),
 * and a finished child's from our own cutime+cstime (the kernel adds a child's
 * CPU there when we reap it). Clock ticks are 1/100 s on Linux.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICK_MS = 10;

/** Fields of /proc/PID/stat after the command name (which may hold spaces). */
function statFields(pid: number | 'self'): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

export interface Cpu {
  user: number;
  sys: number;
}

/** CPU ms used so far by a process (all threads). */
export function processCpu(pid: number | 'self'): Cpu {
  const f = statFields(pid);
  // After the name: state(0) ppid … utime is field 14 of the line, i.e. index 11 here; stime 12.
  return { user: Number(f[11]) * TICK_MS, sys: Number(f[12]) * TICK_MS };
}

/** CPU ms of our reaped children so far (cutime, cstime). */
function childrenCpu(): Cpu {
  const f = statFields('self');
  return { user: Number(f[13]) * TICK_MS, sys: Number(f[14]) * TICK_MS };
}

export const total = (c: Cpu) => c.user + c.sys;
export const minus = (a: Cpu, b: Cpu): Cpu => ({ user: a.user - b.user, sys: a.sys - b.sys });

/** Runs a command to completion (output to /dev/null), in `env`: wall ms and its CPU from /proc. */
export function runMeasured(argv: string[], env: NodeJS.ProcessEnv = process.env): { ms: number; cpu: Cpu } {
  const c0 = childrenCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 24, env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, cpu: minus(childrenCpu(), c0) };
}
