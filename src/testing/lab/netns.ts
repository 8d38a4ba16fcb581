import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FlowgrabError } from '../../errors.js';
import { LabCommandError, type RunOptions, type RunResult, run } from './exec.js';

const ID_SPACE = 36 ** 5;
// One random base per process, mixed with the pid: ids differ across processes.
const idBase = (process.pid * 7_919 + Math.floor(Math.random() * ID_SPACE)) % ID_SPACE;
let counter = 0;

/**
 * A short id for one lab: `fg` + 5 base36 chars, from the pid, a counter and
 * randomness. Within a process ids never repeat (the counter steps by a prime
 * coprime to 36^5); across processes the lab directory lock catches the rare clash.
 * Short because namespace names are built from it and humans type them.
 */
export function uniqueId(prefix = 'fg'): string {
  counter += 1;
  return prefix + ((idBase + counter * 104_729) % ID_SPACE).toString(36).padStart(5, '0');
}

/** How long `waitFor` waits, how often it checks, and what it waits for. */
export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What we wait for, for the timeout message; a function is called at the timeout (to say what was seen by then). */
  what?: string | (() => string);
}

/** Polls `pred` until it returns true; a bounded loop that throws FG_ERR_TIMEOUT with the last error as cause. */
export async function waitFor(pred: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await pred()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
  const what = typeof opts.what === 'function' ? opts.what() : opts.what;
  throw new FlowgrabError('FG_ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what ?? 'condition'}`, {
    op: 'waitFor',
    cause: lastError,
  });
}

/** Fields of /proc/PID/stat after the `(comm)` field, which may itself contain spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Alive means running: a zombie nobody has reaped yet counts as dead. */
export function isAlive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** The kernel's start time of `pid` (clock ticks since boot): tells a live owner from a recycled pid. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function killPid(pid: number, graceMs = 1_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !isAlive(pid), { timeoutMs: graceMs, intervalMs: 20 });
    return;
  } catch {
    // Still alive after the grace period (or already gone): escalate below.
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitFor(() => !isAlive(pid), { timeoutMs: 2_000, intervalMs: 20, what: `pid ${pid} to die after SIGKILL` });
}

/** How a process is started in a namespace. */
export interface NetnsSpawnOptions {
  /** Own session and unref'd: the process outlives this Node process (persistent labs). */
  detached?: boolean;
  /** stdout and stderr are appended here; otherwise discarded. */
  logFile?: string;
  /** stdout piped to the caller (child.stdout), stderr to ours: for a test reading what the process says. */
  pipe?: boolean;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A named network namespace (`ip netns`), and the processes we started in it. */
export class Netns {
  readonly name: string;
  readonly #children = new Set<ChildProcess>();

  /** Wraps an existing namespace; use `Netns.create` to make a new one. */
  constructor(name: string) {
    if (!NAME_RE.test(name))
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `bad netns name ${JSON.stringify(name)}`);
    this.name = name;
  }

  /** Creates namespace `name` with loopback up; throws if it exists. */
  static async create(name: string): Promise<Netns> {
    const ns = new Netns(name);
    await run(['ip', 'netns', 'add', name]);
    // Loopback is down in a fresh namespace; almost every tool expects it up.
    await ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Names of all named namespaces on the host. */
  static async list(): Promise<string[]> {
    const { stdout } = await run(['ip', '-j', 'netns', 'list']);
    if (!stdout.trim()) return [];
    return (JSON.parse(stdout) as { name: string }[]).map((n) => n.name);
  }

  /** Runs `argv` inside the namespace; rejects on a non-zero exit unless opts.allowFail. */
  exec(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.name, ...argv], opts);
  }

  /** `ip -n NAME …`: cheaper than `exec` (no mount namespace is set up). */
  ip(args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run(['ip', '-n', this.name, ...args], opts);
  }

  /** Many `ip` commands in one process (`ip -batch`), one command per line, stopping at the first failure. */
  ipBatch(lines: readonly string[]): Promise<RunResult> {
    return run(['ip', '-n', this.name, '-batch', '-'], { input: `${lines.join('\n')}\n` });
  }

  /** Starts `argv` inside the namespace (a long-running process). */
  spawn(argv: readonly string[], opts: NetnsSpawnOptions = {}): ChildProcess {
    const fd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a');
    try {
      const out = fd ?? 'ignore';
      const child = spawn('ip', ['netns', 'exec', this.name, ...argv], {
        stdio: opts.pipe ? ['ignore', 'pipe', 'inherit'] : ['ignore', out, out],
        detached: opts.detached ?? false,
        env: { ...process.env, LC_ALL: 'C' },
      });
      // A spawn failure shows as `pid === undefined`; without a listener it would crash the process.
      child.on('error', () => {});
      this.#children.add(child);
      child.once('exit', () => this.#children.delete(child));
      if (opts.detached) child.unref();
      return child;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Sets one sysctl inside the namespace. */
  sysctl(key: string, value: string | number): Promise<void> {
    return this.sysctls({ [key]: value });
  }

  /** Sets several sysctls in one `ip netns exec`: net.* sysctls are per namespace. */
  async sysctls(values: Record<string, string | number>): Promise<void> {
    const pairs = Object.entries(values).map(([k, v]) => `${k}=${v}`);
    if (pairs.length > 0) await this.exec(['sysctl', '-q', '-w', ...pairs]);
  }

  /** Every process whose network namespace is this one (ours or not). */
  async pids(): Promise<number[]> {
    const r = await run(['ip', 'netns', 'pids', this.name], { allowFail: true });
    if (r.code !== 0) return [];
    return r.stdout.split('\n').filter(Boolean).map(Number);
  }

  /** Kills what runs inside (SIGTERM, then SIGKILL), then deletes the namespace; fine if it is already gone. */
  async remove(graceMs = 1_000): Promise<void> {
    const pids = new Set<number>();
    for (const child of this.#children) if (child.pid !== undefined) pids.add(child.pid);
    for (const pid of await this.pids()) pids.add(pid);
    await Promise.all([...pids].map((pid) => killPid(pid, graceMs)));
    this.#children.clear();
    const argv = ['ip', 'netns', 'del', this.name];
    const r = await run(argv, { allowFail: true });
    if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new LabCommandError(argv, r.code, r.stderr, false);
  }
}
