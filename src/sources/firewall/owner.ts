/**
 * Who owns a firewall object flowgrab made: "flowgrab pid=123 start=456
 * pidns=4026531836", where start is the process start time in clock ticks
 * (/proc/PID/stat field 22), so a recycled pid never passes for the owner,
 * and pidns the owner's PID namespace: a pid means nothing in another one (a
 * container sharing the network namespace), so its objects are never judged
 * stale from here. A tag whose process is gone marks a stale object left by
 * a killed process. Tags without pidns (older ones) are read as this
 * namespace's.
 */
import { readFileSync, readlinkSync } from 'node:fs';

export interface Owner {
  pid: number;
  start: number;
  /** The owner's PID namespace (its /proc/PID/ns/pid inode); absent in tags written before it was recorded. */
  pidns?: number;
}

/** The PID namespace this process runs in (0 where /proc does not say). */
function ownPidns(): number {
  try {
    return Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export function processStart(pid: number): number | undefined {
  return processStat(pid)?.start;
}

/** A process's state letter (field 3) and start time (field 22) from /proc/PID/stat; undefined when it is gone. */
function processStat(pid: number): { state: string; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], start: Number(rest[19]) };
  } catch {
    return undefined;
  }
}

let self: Owner | undefined;
export function selfOwner(): Owner {
  self ??= { pid: process.pid, start: processStart(process.pid) ?? 0, pidns: ownPidns() };
  return self;
}

export function ownerTag(o: Owner = selfOwner()): string {
  return `flowgrab pid=${o.pid} start=${o.start}${o.pidns ? ` pidns=${o.pidns}` : ''}`;
}

export function parseOwnerTag(text: string | undefined): Owner | undefined {
  const m = /flowgrab pid=(\d+) start=(\d+)(?: pidns=(\d+))?/.exec(text ?? '');
  if (!m) return undefined;
  const o: Owner = { pid: Number(m[1]), start: Number(m[2]) };
  if (m[3] !== undefined) o.pidns = Number(m[3]);
  return o;
}

/** True when the tag names another PID namespace than ours: its pid cannot be looked up here. */
function foreign(o: Owner): boolean {
  const mine = selfOwner().pidns ?? 0;
  return o.pidns !== undefined && mine !== 0 && o.pidns !== mine;
}

/**
 * True when the owner process still runs (same pid, same start time), or cannot be told from here: an owner in
 * another PID namespace is taken to be alive (its objects are left alone, never swept).
 */
/**
 * Whether the owner still runs. A killed process its parent has not reaped yet (a zombie, state Z, or dying, X)
 * holds nothing: counted alive, a restart a second after kill -9 was refused as busy.
 */
export function ownerAlive(o: Owner): boolean {
  if (foreign(o)) return true;
  const st = processStat(o.pid);
  return st !== undefined && st.start === o.start && st.state !== 'Z' && st.state !== 'X';
}

export function isSelf(o: Owner): boolean {
  const me = selfOwner();
  return o.pid === me.pid && o.start === me.start && !foreign(o);
}
