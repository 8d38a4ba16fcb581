import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { FlowgrabError } from '../../errors.js';
import { teardownError } from './exec.js';
import { killPid, Netns, processStartTime, uniqueId, waitFor } from './netns.js';
import { claimLabDir, labNamespaces, recordProc } from './state.js';

/** A lab's id and whether it outlives this process. */
export interface LabOptions {
  /** Defaults to a fresh `uniqueId()`; namespaces are named `${id}-${suffix}`. */
  id?: string;
  /** Spawned processes are detached so they outlive this process (the CLI's lab). */
  persistent?: boolean;
}

/** How a lab process is started: its name, readiness check, log file. */
export interface LabSpawnOptions {
  /** Names the pid and log files in the lab directory; defaults to the program name. */
  name?: string;
  /** Polled until true (bounded by `readyTimeoutMs`); the process exiting first is an error. */
  ready?: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

/** Addresses and MACs of a veth pair. */
export interface VethOptions {
  macA?: string;
  macB?: string;
  /**
   * Addresses (CIDR) for each end: given, that end gets them (IPv6 without duplicate detection, usable at
   * once) and is set up.
   */
  addrsA?: readonly string[];
  addrsB?: readonly string[];
}

const ID_RE = /^[a-z0-9]{2,12}$/;
const IFNAME_MAX = 15;

/**
 * A cleanup registry for one lab: everything created through it is undone by
 * `close()`, which runs every step even when some fail and reports them together.
 */
export class Lab {
  readonly id: string;
  /** State directory (/run/flowgrab-lab/ID): owner marker, pid files, logs. */
  readonly dir: string;
  readonly persistent: boolean;
  readonly #namespaces: Netns[] = [];
  readonly #procs: { name: string; child: ChildProcess }[] = [];
  readonly #deferred: (() => unknown)[] = [];
  #closing: Promise<void> | undefined;

  constructor(opts: LabOptions = {}) {
    this.persistent = opts.persistent ?? false;
    if (opts.id !== undefined && !ID_RE.test(opts.id)) {
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `lab id must match ${ID_RE}: ${opts.id}`);
    }
    // A generated id may (rarely) clash with another process's lab: take the next one.
    for (let attempt = 1; ; attempt++) {
      const id = opts.id ?? uniqueId();
      try {
        this.dir = claimLabDir(id, this.persistent);
        this.id = id;
        break;
      } catch (err) {
        if (opts.id !== undefined || attempt >= 5 || (err as FlowgrabError).code !== 'FG_ERR_INVALID_STATE') throw err;
      }
    }
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** A new namespace named with the lab's prefix and `suffix`, removed at close(). */
  async netns(suffix: string): Promise<Netns> {
    this.#assertOpen('netns');
    const ns = await Netns.create(`${this.id}-${suffix}`);
    this.#namespaces.push(ns);
    return ns;
  }

  /** A veth pair with one end in each namespace, created there directly (no name clash in the host ns). */
  async veth(nsA: Netns, ifA: string, nsB: Netns, ifB: string, opts: VethOptions = {}): Promise<void> {
    this.#assertOpen('veth');
    for (const name of [ifA, ifB]) {
      if (name.length > IFNAME_MAX)
        throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `interface name too long: ${name}`);
    }
    const a = opts.macA ? ['address', opts.macA] : [];
    const b = opts.macB ? ['address', opts.macB] : [];
    await nsA.ip(['link', 'add', ifA, ...a, 'type', 'veth', 'peer', 'name', ifB, ...b, 'netns', nsB.name]);
    const up = (ns: Netns, dev: string, addrs: readonly string[]) =>
      ns.ipBatch([
        ...addrs.map((x) => `addr add ${x} dev ${dev}${x.includes(':') ? ' nodad' : ''}`),
        `link set ${dev} up`,
      ]);
    if (opts.addrsA) await up(nsA, ifA, opts.addrsA);
    if (opts.addrsB) await up(nsB, ifB, opts.addrsB);
  }

  /**
   * Starts a long-running process inside `ns`, logging to DIR/NAME.log and
   * recording its pid; with `ready`, resolves only once it serves.
   */
  async spawn(ns: Netns, argv: readonly string[], opts: LabSpawnOptions = {}): Promise<ChildProcess> {
    this.#assertOpen('spawn');
    const name = opts.name ?? basename(argv[0] ?? 'proc');
    const logFile = join(this.dir, `${name}.log`);
    const child = ns.spawn(argv, { detached: this.persistent, logFile });
    if (child.pid === undefined) throw new FlowgrabError('FG_ERR_NETNS', `could not start ${name} in ${ns.name}`);
    this.#procs.push({ name, child });
    recordProc(this.dir, { name, pid: child.pid, start: processStartTime(child.pid) ?? '' });
    if (!opts.ready) return child;
    const ready = opts.ready;
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    await waitFor(async () => exited() || (await ready()), {
      timeoutMs: opts.readyTimeoutMs ?? 5_000,
      intervalMs: 25,
      what: `${name} in ${ns.name} to be ready`,
    });
    if (exited()) {
      const tail = readTail(logFile);
      throw new FlowgrabError(
        'FG_ERR_NETNS',
        `${name} in ${ns.name} exited (${child.exitCode ?? child.signalCode}) before it was ready${tail ? `: ${tail}` : ''}`,
      );
    }
    return child;
  }

  /** Runs `fn` at close, before processes and namespaces go (last deferred runs first). */
  defer(fn: () => unknown): void {
    this.#assertOpen('defer');
    this.#deferred.push(fn);
  }

  /** Idempotent: a second call returns the first call's promise. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    // Deferred work first and in reverse: it was registered after (and may rely on) what follows.
    for (const fn of this.#deferred.reverse()) await step(fn);
    await Promise.all(this.#procs.map(({ child }) => step(() => child.pid !== undefined && killPid(child.pid))));
    // Also namespaces made outside `netns()` under our prefix, e.g. by a step that failed half-way.
    const names = new Set(this.#namespaces.map((n) => n.name));
    await step(async () => {
      for (const n of await labNamespaces(this.id)) names.add(n);
    });
    const byName = new Map(this.#namespaces.map((n) => [n.name, n]));
    await Promise.all([...names].map((n) => step(() => (byName.get(n) ?? new Netns(n)).remove())));
    await step(() => rmSync(this.dir, { recursive: true, force: true }));
    if (errors.length > 0) throw teardownError(errors, `lab ${this.id}`);
  }

  #assertOpen(op: string): void {
    if (this.#closing) throw new FlowgrabError('FG_ERR_CLOSED', `lab ${this.id} is closed`, { op: `lab.${op}` });
  }
}

/** Last lines of a log file, for error messages. */
function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '';
  }
}
