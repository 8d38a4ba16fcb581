/**
 * What a spool finds when it opens its directory: its segments (counted and weighed, an unreadable part noted),
 * and the delivered position saved in `cursor` (written atomically, rename).
 */
import { closeSync, constants, lstatSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SEGMENT_RE, scanSegment, segmentName } from './segment.js';
import type { Pos, Seg } from './types.js';

export const segmentPath = (dir: string, id: number): string => join(dir, segmentName(id));

/** The segments in `dir`, oldest first: their frames counted and weighed, where one stops being readable. */
export function loadSegments(dir: string, maxEntry: number, weigh: (payload: Buffer) => number): Seg[] {
  const segs: Seg[] = [];
  for (const f of readdirSync(dir).sort()) {
    const m = SEGMENT_RE.exec(f);
    if (!m) continue;
    const id = Number(m[1]);
    const s = scanSegment(segmentPath(dir, id), 0, maxEntry, weigh);
    segs.push({
      id,
      bytes: lstatSync(segmentPath(dir, id)).size,
      count: s.count,
      weight: s.weight,
      ...(s.corrupt ? { unreadableAt: s.stop } : {}),
    });
  }
  return segs;
}

/** The delivered position from `cursor`; a cursor naming a removed segment means all before it went out. */
export function loadCursor(dir: string, segs: Seg[], maxEntry: number, weigh: (payload: Buffer) => number): Pos {
  const first = segs[0]?.id ?? 1;
  try {
    const c = JSON.parse(readFileSync(join(dir, 'cursor'), 'utf8')) as { seg?: unknown; off?: unknown };
    const seg = segs.find((s) => s.id === c.seg);
    if (seg && typeof c.off === 'number' && Number.isInteger(c.off) && c.off >= 0 && c.off <= seg.bytes) {
      const rest = scanSegment(segmentPath(dir, seg.id), c.off, maxEntry, weigh);
      return {
        seg: seg.id,
        off: c.off,
        idx: Math.max(0, seg.count - rest.count),
        w: Math.max(0, seg.weight - rest.weight),
      };
    }
    if (typeof c.seg === 'number' && c.seg > first) {
      // Its segment is gone (fully delivered, then removed before the cursor moved on): start after it.
      const next = segs.find((s) => s.id > (c.seg as number));
      return { seg: next?.id ?? first, off: 0, idx: 0, w: 0 };
    }
  } catch {
    // No cursor yet (or unreadable): everything in the spool is undelivered.
  }
  return { seg: first, off: 0, idx: 0, w: 0 };
}

/** Saves the delivered position (segment and offset) atomically. */
export function saveCursor(dir: string, done: Pos): void {
  const tmp = join(dir, 'cursor.tmp');
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, JSON.stringify({ seg: done.seg, off: done.off }));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, 'cursor'));
}
