import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowgrabError } from '../../errors.js';
import { teardownError } from './exec.js';
import { isAlive, killPid, Netns, processStartTime } from './netns.js';

/**
 * On-disk state of labs, one directory per lab id under /run (a tmpfs, wiped
 * at boot exactly like the namespaces themselves). It lets a later process
 * tear down what an earlier, killed one left: namespaces are `${id}-*`, and
 * `owner.json` says which process owns them.
 */
export const LAB_STATE_ROOT = '/run/flowgrab-lab';

/** Who made a lab and when (its state directory marker). */
export interface LabOwner {
  id: string;
  pid: number;
  /** Start time of `pid` (/proc/PID/stat), so a recycled pid is not mistaken for the owner. */
  pidStart: string;
  /** Persistent labs (the CLI's) outlive their creator on purpose and are never swept as stale. */
  persistent: boolean;
  createdAt: string;
}

/** A process the lab started: name, pid and start time (to never kill a recycled pid). */
export interface LabProcRecord {
  name: string;
  pid: number;
  start: string;
}

/** A lab's state directory under /run/flowgrab-lab. */
export function labDir(id: string): string {
  return join(LAB_STATE_ROOT, id);
}

/** Creates the lab's directory, failing if that id is taken: `mkdir` is the lock. */
export function claimLabDir(id: string, persistent: boolean): string {
  const dir = labDir(id);
  mkdirSync(LAB_STATE_ROOT, { recursive: true, mode: 0o755 });
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FlowgrabError('FG_ERR_INVALID_STATE', `lab ${id} already exists (${dir}); tear it down first`, {
        op: 'lab.create',
        cause: err,
      });
    }
    throw err;
  }
  const owner: LabOwner = {
    id,
    pid: process.pid,
    pidStart: processStartTime(process.pid) ?? '',
    persistent,
    createdAt: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'owner.json'), `${JSON.stringify(owner)}\n`);
  return dir;
}

/** A lab's owner marker, if the lab has a state directory. */
export function readOwner(id: string): LabOwner | undefined {
  try {
    return JSON.parse(readFileSync(join(labDir(id), 'owner.json'), 'utf8')) as LabOwner;
  } catch {
    return undefined;
  }
}

export function ownerAlive(owner: LabOwner): boolean {
  return isAlive(owner.pid) && processStartTime(owner.pid) === owner.pidStart;
}

/** Remembers a started process: `NAME.pid` for people, `procs.json` (with start time) for teardown. */
export function recordProc(dir: string, rec: LabProcRecord): void {
  writeFileSync(join(dir, `${rec.name}.pid`), `${rec.pid}\n`);
  const all = readProcs(dir).filter((p) => p.name !== rec.name);
  all.push(rec);
  writeFileSync(join(dir, 'procs.json'), `${JSON.stringify(all)}\n`);
}

/** The processes a lab recorded (pid, start time, name). */
export function readProcs(dir: string): LabProcRecord[] {
  try {
    return JSON.parse(readFileSync(join(dir, 'procs.json'), 'utf8')) as LabProcRecord[];
  } catch {
    return [];
  }
}

/** Recorded processes that still run (same pid, same start time). */
export function liveProcs(dir: string): LabProcRecord[] {
  return readProcs(dir).filter((p) => isAlive(p.pid) && processStartTime(p.pid) === p.start);
}

/** The network namespaces of lab `id` (named `id-…`). */
export async function labNamespaces(id: string): Promise<string[]> {
  return (await Netns.list()).filter((n) => n.startsWith(`${id}-`));
}

/** What removing a lab found and removed. */
export interface DestroyResult {
  id: string;
  namespaces: string[];
  killed: number[];
  /** Whether there was anything (state or namespaces) to remove. */
  found: boolean;
}

/**
 * Tears a lab down from its on-disk state alone: kills its recorded processes,
 * everything inside its namespaces, deletes the namespaces and the directory.
 * Runs every step and then reports all failures together.
 */
export async function destroyLab(id: string): Promise<DestroyResult> {
  const dir = labDir(id);
  const errors: unknown[] = [];
  const namespaces = await labNamespaces(id);
  const procs = existsSync(dir) ? liveProcs(dir) : [];
  await Promise.all(procs.map((p) => killPid(p.pid).catch((err) => errors.push(err))));
  await Promise.all(namespaces.map((n) => new Netns(n).remove().catch((err) => errors.push(err))));
  const found = existsSync(dir) || namespaces.length > 0;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    errors.push(err);
  }
  if (errors.length > 0) throw teardownError(errors, `lab ${id}`);
  return { id, namespaces, killed: procs.map((p) => p.pid), found };
}

/** A directory without owner.json younger than this may be a lab being created right now. */
const UNCLAIMED_GRACE_MS = 60_000;

/** Which stale labs a sweep removes. */
export interface SweepOptions {
  /** Also remove persistent labs (whose creator exited on purpose). */
  includePersistent?: boolean;
}

/**
 * Removes labs whose creating process is gone (a killed test run), so the next
 * run never trips over stale namespaces or daemons. Returns the swept ids.
 * Namespaces without a state directory are left alone: they are not provably ours.
 */
export async function sweepStaleLabs(opts: SweepOptions = {}): Promise<string[]> {
  if (!existsSync(LAB_STATE_ROOT)) return [];
  const swept: string[] = [];
  const errors: unknown[] = [];
  for (const id of readdirSync(LAB_STATE_ROOT)) {
    const owner = readOwner(id);
    let stale: boolean;
    if (owner) stale = owner.persistent ? opts.includePersistent === true : !ownerAlive(owner);
    else stale = Date.now() - statSync(labDir(id)).mtimeMs > UNCLAIMED_GRACE_MS;
    if (!stale) continue;
    try {
      await destroyLab(id);
      swept.push(id);
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw teardownError(errors, 'sweepStaleLabs');
  return swept;
}
