/**
 * Helpers for flowgrabd's integration tests: throwaway unprivileged users,
 * client scripts run as them, policy files, a raw frame client, spawned
 * daemons, and the kernel-side evidence (nft tables, file descriptors).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyInput } from '../../src/auth/policy.js';
import { run, uniqueId, waitFor } from '../../src/testing/lab/index.js';

export const ROOT = join(import.meta.dirname, '../..');
export const DIST = join(ROOT, 'dist');
export const FIXTURES = join(ROOT, 'test/fixtures/daemon');
export const FLOWGRABD = join(DIST, 'src/cli/flowgrabd.js');
export const FLOWGRAB = join(DIST, 'bin/flowgrab.js');

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * useradd/userdel, again while another process holds the lock on /etc/passwd (test files run side by side and
 * each makes its users; shadow gives up after about 15 s); at most 4 tries, then its error.
 */
async function userCommand(argv: string[], allowFail = false): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await run(argv, { allowFail: true });
    if (r.code === 0) return;
    if (/lock/i.test(r.stderr) && attempt < 4) continue;
    if (allowFail) return;
    throw new Error(`\`${argv.join(' ')}\` exited with code ${r.code}: ${r.stderr.trim()}`);
  }
}

/** A new unprivileged user (no home, no login shell) named fgu<id>. */
export async function createUser(suffix = ''): Promise<TestUser> {
  const name = `${uniqueId('fgu')}${suffix}`;
  await userCommand(['useradd', '-M', '-s', '/usr/sbin/nologin', name]);
  const uid = Number((await run(['id', '-u', name])).stdout.trim());
  const gid = Number((await run(['id', '-g', name])).stdout.trim());
  return { name, uid, gid };
}

/** Removes the user (and its group); the test must have stopped its processes. Fine when already gone. */
export async function removeUser(u: TestUser | undefined): Promise<void> {
  if (!u) return;
  await userCommand(['userdel', u.name], true);
}

/** One new user per suffix, in order (e.g. `const [V, M] = await createUsers('v', 'm')`). */
export async function createUsers(...suffixes: string[]): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (const s of suffixes) users.push(await createUser(s));
  return users;
}

/** Removes the users (their processes must be stopped) and throws when one is still there. */
export async function removeUsers(users: (TestUser | undefined)[]): Promise<void> {
  for (const u of users) await removeUser(u);
  const left = users.filter((u): u is TestUser => u !== undefined && userExists(u.name));
  if (left.length) throw new Error(`test users still exist after userdel: ${left.map((u) => u.name).join(', ')}`);
}

export function userExists(name: string): boolean {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A temporary directory other users can enter (the daemon's socket lives here). */
export function sharedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export function writePolicy(file: string, policy: PolicyInput): void {
  writeFileSync(file, `${JSON.stringify(policy, null, 2)}\n`);
}

/** Where a daemon test keeps its files: a shared temp dir, the daemon's socket in it, and its policy file (written when given). */
export function daemonFiles(
  prefix: string,
  policy?: PolicyInput,
  socketName = 'flowgrabd.sock',
): { dir: string; socket: string; policyFile: string } {
  const dir = sharedTempDir(prefix);
  const policyFile = join(dir, 'policy.json');
  if (policy) writePolicy(policyFile, policy);
  return { dir, socket: join(dir, socketName), policyFile };
}

export interface Output {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/**
 * The argv that runs `node …args` as `user` (root when undefined). setpriv
 * execs in place (runuser would fork and wait), so the pid we get is the
 * client's own: killing it kills the client.
 */
export function asUser(user: TestUser | undefined, args: string[]): [string, string[]] {
  if (!user) return [process.execPath, args];
  return ['setpriv', ['--reuid', user.name, '--regid', user.name, '--clear-groups', '--', process.execPath, ...args]];
}

/** The environment for a process run as `user`: root's HOME is not theirs. */
export function userEnv(user: TestUser | undefined): NodeJS.ProcessEnv {
  return user ? { ...process.env, HOME: '/nonexistent', USER: user.name, LOGNAME: user.name } : process.env;
}

/** A process whose stdout is read as lines (NDJSON from the fixtures), with bounded waits on them. */
export class LineProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  err = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';

  /** `detached`: its own process group, so whatever it leaves running can be found (and killed) with it. */
  constructor(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, detached = false) {
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, detached });
    this.child.on('error', () => {});
    this.child.stdout!.on('data', (d: Buffer) => {
      const parts = (this.partial + d.toString('utf8')).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts.filter(Boolean));
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get done(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Every line parsed as JSON (the fixtures print nothing else). */
  json<T = Record<string, unknown>>(): T[] {
    return this.lines.map((l) => JSON.parse(l) as T);
  }

  /** Waits (bounded) for a JSON line matching `pred`; fails early, with stderr, if the process exits first. */
  async waitJson<T = Record<string, unknown>>(
    pred: (m: T) => boolean,
    timeoutMs = 10_000,
    what = 'a line',
  ): Promise<T> {
    let found: T | undefined;
    await waitFor(
      () => {
        found = this.json<T>().find(pred);
        if (found === undefined && this.done) throw new Error(`exited before ${what}: ${this.err.trim()}`);
        return found !== undefined;
      },
      { timeoutMs, what: () => `${what} (stderr: ${this.err.trim().slice(-500)})` },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; stdout: ${this.lines.slice(-5).join(' | ')}`, { cause: e });
    });
    return found!;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.done) this.child.kill(signal);
  }

  /** Signals its whole process group (only for a detached process, which leads its own). */
  killGroup(signal: NodeJS.Signals = 'SIGKILL'): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is empty
    }
  }

  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
  }
}

/** Runs `node args` as `user` to completion (bounded), collecting its output. */
/** Starts `node args…` as `user` (root without one); its output as a LineProcess. */
export function startNodeAs(user: TestUser | undefined, args: string[]): LineProcess {
  const [cmd, argv] = asUser(user, args);
  return new LineProcess(cmd, argv, userEnv(user));
}

export function runNodeAs(user: TestUser | undefined, args: string[], timeoutMs = 20_000): Promise<Output> {
  const p = startNodeAs(user, args);
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  return p.exited.then(({ code, signal }) => {
    clearTimeout(t);
    return { code, signal, out: p.lines.join('\n'), err: p.err };
  });
}

export interface FlowScriptConfig {
  graph: string;
  /** Exit after this many records. */
  count?: number;
  /** Exit after this long (ms), whatever came. */
  durationMs?: number;
  name?: string;
  bufferRecords?: number;
  /** Print a `status` line (the daemon's status as this user sees it) after activating. */
  status?: boolean;
}

/** Starts test/fixtures/daemon/flow.mjs as `user`: one remote flow, its records and end as NDJSON lines. */
export function startFlowScript(user: TestUser | undefined, socket: string, cfg: FlowScriptConfig): LineProcess {
  const [cmd, argv] = asUser(user, [join(FIXTURES, 'flow.mjs'), DIST, socket, JSON.stringify(cfg)]);
  return new LineProcess(cmd, argv, userEnv(user));
}

/** What test/fixtures/daemon/raw.mjs prints: every reply frame, and whether the daemon hung up. */
export interface RawScriptResult {
  hello?: { uid: number; gid: number; user?: string };
  replies: Record<string, unknown>[];
  closedByDaemon: boolean;
}

/** Sends frames (objects, or {hex} for raw bytes) as `user` and reports what came back; each reply is waited for up to `waitMs` (it ends at the reply, or when the daemon hangs up). */
export async function rawScript(
  user: TestUser | undefined,
  socket: string,
  frames: unknown[],
  waitMs = 10_000,
): Promise<RawScriptResult> {
  const r = await runNodeAs(user, [join(FIXTURES, 'raw.mjs'), socket, JSON.stringify(frames), String(waitMs)]);
  if (r.code !== 0) throw new Error(`raw.mjs exited ${r.code ?? r.signal}: ${r.err}`);
  return JSON.parse(r.out) as RawScriptResult;
}

/** The protocol's framing: 4-byte big-endian length, then the bytes. */
export function frame(body: Buffer | string | object): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(b.length, 0);
  return Buffer.concat([hdr, b]);
}

/** A client that speaks frames by hand: for malformed input, pipelining, and never reading. */
export class RawClient {
  readonly frames: Record<string, unknown>[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private nextId = 1000;
  readonly whenClosed: Promise<void>;

  private constructor(readonly sock: Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4) {
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + len) break;
        this.frames.push(JSON.parse(this.buf.subarray(4, 4 + len).toString('utf8')) as Record<string, unknown>);
        this.buf = this.buf.subarray(4 + len);
      }
    });
    sock.on('error', () => {});
    this.whenClosed = new Promise((r) =>
      sock.once('close', () => {
        this.closed = true;
        r();
      }),
    );
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.sock.write(bytes);
  }

  send(msg: object): void {
    this.sock.write(frame(msg));
  }

  /** Sends a request with a fresh id and waits (bounded) for its reply. */
  async request(body: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.send({ v: 1, id, ...body });
    let reply: Record<string, unknown> | undefined;
    await waitFor(() => (reply = this.frames.find((f) => f.id === id)) !== undefined, {
      timeoutMs,
      intervalMs: 5,
      what: `reply to ${String(body.op)}`,
    });
    return reply!;
  }

  /** Waits (bounded) until `n` frames have arrived in all. */
  async waitFrames(n: number, timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.frames.length >= n, { timeoutMs, intervalMs: 5, what: `${n} frames` });
  }

  /** Stops reading: the kernel buffers fill, then the daemon's queue for us. */
  stopReading(): void {
    this.sock.pause();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** Open file descriptors of a process. */
export function fdCount(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A process's resident memory now (VmRSS) and its peak so far (VmHWM), in bytes, from /proc/PID/status. */
export function procMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Table names (`family name`) in a namespace. */
export async function nftTables(netns: string): Promise<string[]> {
  const r = await run(['ip', 'netns', 'exec', netns, 'nft', 'list', 'tables']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('table '))
    .map((l) => l.slice('table '.length));
}

/** How many `log prefix "flowgrab-dns"` rules the namespace's whole ruleset holds. */
export async function dnsLogRules(netns: string): Promise<number> {
  const r = await run(['ip', 'netns', 'exec', netns, 'nft', 'list', 'ruleset']);
  return r.stdout.split('\n').filter((l) => l.includes('log prefix "flowgrab-dns"')).length;
}

/** A flowgrabd started from dist/, its stderr log lines kept. */
export class SpawnedDaemon {
  readonly proc: LineProcess;

  /** `ownGroup`: in a process group of its own, as under systemd, where the unit's processes go with it. */
  constructor(
    readonly socket: string,
    readonly policyFile: string,
    readonly opts: { metrics?: string; ownGroup?: boolean; args?: string[] } = {},
  ) {
    const args = [FLOWGRABD, '--socket', socket, '--policy', policyFile, ...(opts.args ?? [])];
    if (opts.metrics) args.push('--metrics', opts.metrics);
    this.proc = new LineProcess(process.execPath, args, process.env, opts.ownGroup);
  }

  get pid(): number {
    return this.proc.pid;
  }

  get log(): string {
    return this.proc.err;
  }

  /** Resolves once the daemon says it listens (bounded: Node's start on a busy machine); fails with its log if it exits first. */
  async ready(timeoutMs = 30_000): Promise<this> {
    await waitFor(
      () => {
        if (this.proc.done) throw new Error(`flowgrabd exited: ${this.log}`);
        return /listening/.test(this.log) && (!this.opts.metrics || /msg="metrics"/.test(this.log));
      },
      { timeoutMs, what: 'flowgrabd to listen' },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; log: ${this.log}`, { cause: e });
    });
    return this;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.child.kill(sig);
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    if (this.opts.ownGroup) this.proc.killGroup();
  }
}

/** Waits for a daemon log line matching `re` (the CLI's log lines are on stderr). */
export async function waitLog(d: SpawnedDaemon, re: RegExp, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => re.test(d.log), { timeoutMs, what: `flowgrabd log ${re}` }).catch((e) => {
    throw new Error(`${(e as Error).message}; log: ${d.log}`, { cause: e });
  });
}
