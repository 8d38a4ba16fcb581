/**
 * Who owns a firewall object flowgrab made: "flowgrab pid=123 start=456",
 * where start is the process start time in clock ticks (/proc/PID/stat
 * field 22), so a recycled pid never passes for the owner. A tag whose
 * process is gone marks a stale object left by a killed process.
 */
import { readFileSync } from 'node:fs';

export interface Owner {
  pid: number;
  start: number;
}

export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

let self: Owner | undefined;
export function selfOwner(): Owner {
  self ??= { pid: process.pid, start: processStart(process.pid) ?? 0 };
  return self;
}

export function ownerTag(o: Owner = selfOwner()): string {
  return `flowgrab pid=${o.pid} start=${o.start}`;
}

export function parseOwnerTag(text: string | undefined): Owner | undefined {
  const m = /flowgrab pid=(\d+) start=(\d+)/.exec(text ?? '');
  return m ? { pid: Number(m[1]), start: Number(m[2]) } : undefined;
}

/** True when the owner process still runs (same pid, same start time). */
export function ownerAlive(o: Owner): boolean {
  return processStart(o.pid) === o.start;
}

export function isSelf(o: Owner): boolean {
  const me = selfOwner();
  return o.pid === me.pid && o.start === me.start;
}
