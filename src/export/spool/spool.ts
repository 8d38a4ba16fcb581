/**
 * A durable, bounded, in-order spool: records are appended to segment files
 * and handed out from a committed position; the position moves only when the
 * far side (a JetStream ack, an MQTT PUBACK, a TCP write) confirmed delivery.
 *
 * - Write-ahead: every record goes to the spool first and is delivered from
 *   it, so a healthy sink and an unreachable one follow the same path and
 *   order is kept across outages and restarts.
 * - Durability: frames are written with write(2) at the end of each event
 *   loop turn (or every 256 KiB), so `kill -9` loses at most the records of
 *   the turn it interrupts; the page cache keeps the rest. fdatasync runs at
 *   most `syncMs` after a write (default 1 s; 0 = after every write), which
 *   bounds what a power loss can take.
 * - The delivered position (`cursor`, segment + offset) is written atomically
 *   (rename) at most every 200 ms and on close, so a crash replays at most
 *   the last 200 ms of delivered records: at-least-once, and the sinks make
 *   replays harmless (JetStream's Nats-Msg-Id dedupe).
 * - Bound: when the segments pass `maxBytes`, the oldest segment is removed
 *   and its undelivered records are counted in `dropped` (and reported
 *   through `onDrop`): loss only ever by the limit or by damage on disk (a
 *   record whose bytes fail their checksum, a segment unreadable past a
 *   length that cannot be), never silent.
 * - One process per directory (a pid lock file), since two writers would
 *   interleave frames.
 */
import { closeSync, constants, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type FileLock, lockFile } from '../../netlink/file-lock.js';
import { trustedDir } from '../../util/trusted-dir.js';
import { frame, HEADER, readFrames } from './segment.js';
import { loadCursor, loadSegments, saveCursor, segmentPath } from './state.js';
import {
  bounded,
  CURSOR_MS,
  FLUSH_BYTES,
  MiB,
  type Out,
  type Pos,
  type Seg,
  type SpoolEntry,
  type SpoolOptions,
  type SpoolStats,
} from './types.js';

/** A segment is always a new file: made here (O_EXCL), never a symlink or a file someone left in its place. */
const NEW_FILE = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export type { SpoolEntry, SpoolOptions, SpoolStats } from './types.js';

export class Spool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly syncMs: number;
  private readonly maxEntry: number;
  private readonly segs: Seg[] = [];
  private done: Pos;
  private read: Pos;
  private out: Out[] = [];
  private outHead = 0;
  private readonly acked = new Set<number>();
  /** Unreadable segments removed while the spool opened, counted once its stats exist. */
  /** In flight when their segment was dropped by the limit: delivered if confirmed, lost at the next rewind. */
  private readonly orphans = new Map<number, number>();
  private readonly weigh: (payload: Buffer) => number;
  private seq = 0;
  private wfd = -1;
  private buf: Buffer[] = [];
  private bufBytes = 0;
  private flushScheduled = false;
  private syncTimer?: NodeJS.Timeout;
  private cursorTimer?: NodeJS.Timeout;
  /** One process per spool directory: the `lock` file in it, held from open to close (netlink/file-lock.ts). */
  private readonly lock: FileLock;
  private closed = false;
  private readonly st: SpoolStats;
  /** Called once per event loop turn in which records were appended (the sink's pump wakes up). */
  onData?: () => void;

  constructor(private readonly o: SpoolOptions) {
    this.dir = o.dir;
    this.maxBytes = bounded('maxBytes', o.maxBytes ?? 256 * MiB, 64 * 1024, 2 ** 40);
    this.segmentBytes = bounded(
      'segmentBytes',
      o.segmentBytes ?? Math.min(64 * MiB, Math.max(64 * 1024, Math.floor(this.maxBytes / 8))),
      4096,
      this.maxBytes,
    );
    this.syncMs = bounded('syncMs', o.syncMs ?? 1000, 0, 3_600_000);
    this.maxEntry = bounded('maxEntryBytes', o.maxEntryBytes ?? MiB, 1, 64 * MiB);
    this.weigh = o.weigh ?? (() => 1);
    // Another user's directory (or one they can write in or swap) could hold symlinks where segments go.
    trustedDir(this.dir, 'spool', { privateDir: true });
    this.lock = lockFile(join(this.dir, 'lock'), `spool ${this.dir}`, 'spool.lock');
    this.st = { appended: 0, delivered: 0, dropped: 0, pending: 0, recovered: 0, bytes: 0, segments: 0 };
    try {
      this.segs.push(...loadSegments(this.dir, this.maxEntry, this.weigh));
      this.done = loadCursor(this.dir, this.segs, this.maxEntry, this.weigh);
      this.read = { ...this.done };
      const nextId = (this.segs.at(-1)?.id ?? 0) + 1;
      // Appends always go to a fresh segment: never after a tail a crash may have torn.
      this.segs.push({ id: nextId, bytes: 0, count: 0, weight: 0 });
      this.wfd = openSync(this.path(nextId), NEW_FILE, 0o600);
      // What earlier runs delivered goes now, not when this run's records pass it.
      this.dropDelivered();
    } catch (err) {
      this.lock.release();
      throw err;
    }
    this.st.pending = this.st.recovered = this.pendingCount();
  }

  private path(id: number): string {
    return segmentPath(this.dir, id);
  }

  /** Records (by weight) not yet confirmed. */
  private pendingCount(): number {
    let n = 0;
    for (const s of this.segs) if (s.id >= this.done.seg) n += s.weight;
    return n - this.done.w;
  }

  /** Appends one record; false (and nothing written) when it is larger than maxEntryBytes or the spool is closed. */
  append(payload: Buffer): boolean {
    // An empty entry is refused: a zero length marks a damaged file (a zeroed tail), never a record.
    if (this.closed || payload.length === 0 || payload.length > this.maxEntry) return false;
    const f = frame(payload);
    let active = this.segs[this.segs.length - 1];
    if (active.count > 0 && active.bytes + f.length > this.segmentBytes) {
      this.flush();
      active = this.rotate();
    }
    const w = this.weigh(payload);
    this.buf.push(f);
    this.bufBytes += f.length;
    active.bytes += f.length;
    active.count++;
    active.weight += w;
    this.st.appended += w;
    if (this.bufBytes >= FLUSH_BYTES) this.flush();
    // One write and one wake-up of the reader per event loop turn, not per record.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
        this.onData?.();
      }).unref();
    }
    this.enforceLimit();
    return true;
  }

  private rotate(): Seg {
    if (this.wfd >= 0) {
      const fd = this.wfd;
      // Forgotten first: if the next segment cannot be made, nothing may sync or write a closed descriptor (its
      // number may belong to another file by then).
      this.wfd = -1;
      fdatasyncSync(fd);
      closeSync(fd);
    }
    const s = { id: this.segs[this.segs.length - 1].id + 1, bytes: 0, count: 0, weight: 0 };
    // Made before it is listed: a segment that could not be made (the name taken, the disk full) is not one. The
    // next append tries again.
    this.wfd = openSync(this.path(s.id), NEW_FILE, 0o600);
    this.segs.push(s);
    return s;
  }

  private totalBytes(): number {
    let n = 0;
    for (const s of this.segs) n += s.bytes;
    return n;
  }

  /** Oldest segments go first; their undelivered records are counted. The segment being written stays. */
  private enforceLimit(): void {
    while (this.segs.length > 1 && this.totalBytes() > this.maxBytes) {
      const s = this.segs[0];
      const undelivered = s.id === this.done.seg ? s.weight - this.done.w : s.id > this.done.seg ? s.weight : 0;
      // Records in flight from it may still be confirmed: they are counted when that is known (ack, rewind).
      const settled = this.removeOldest();
      this.lose(undelivered - settled, `spool full (${this.maxBytes} bytes): oldest records dropped`);
    }
  }

  private lose(n: number, why: string): void {
    if (n <= 0) return;
    this.st.dropped += n;
    this.o.onDrop?.(n, why);
  }

  /**
   * Whole segments delivered (never the one being written) are removed, cursor first: those before the delivered
   * position's segment, and that one when all of it went out. (Comparing with its segment alone kept a segment
   * whose last record was confirmed together with the next segment's first: they piled up from run to run.)
   */
  private dropDelivered(): void {
    while (
      this.segs.length > 1 &&
      (this.segs[0].id < this.done.seg || (this.segs[0].id === this.done.seg && this.done.idx >= this.segs[0].count))
    )
      this.removeOldest();
  }

  /** Removes the oldest segment; returns how many of its records were handed out (in flight or confirmed). */
  private removeOldest(): number {
    const s = this.segs.shift() as Seg;
    if (s.unreadableAt !== undefined)
      this.lose(1, `spool segment ${s.id}: unreadable from byte ${s.unreadableAt}; the records after it are lost`);
    const next = { seg: this.segs[0].id, off: 0, idx: 0, w: 0 };
    if (this.done.seg <= s.id) this.done = next;
    if (this.read.seg <= s.id) this.read = { ...next };
    let settled = 0;
    while (this.outHead < this.out.length && this.out[this.outHead].end.seg <= s.id) {
      const { seq, weight } = this.out[this.outHead++];
      settled += weight;
      if (this.acked.delete(seq)) this.st.delivered += weight;
      else this.orphans.set(seq, weight);
    }
    this.writeCursor();
    rmSync(this.path(s.id), { force: true });
    return settled;
  }

  /** Writes the buffered frames (the end of each turn does it; a reader calls it first). */
  flush(): void {
    if (this.bufBytes === 0 || this.wfd < 0) return;
    const b = this.buf.length === 1 ? this.buf[0] : Buffer.concat(this.buf, this.bufBytes);
    this.buf = [];
    this.bufBytes = 0;
    let off = 0;
    while (off < b.length) off += writeSync(this.wfd, b, off);
    if (this.syncMs === 0) fdatasyncSync(this.wfd);
    else if (!this.syncTimer)
      this.syncTimer = setTimeout(() => {
        this.syncTimer = undefined;
        if (this.wfd >= 0) fdatasyncSync(this.wfd);
      }, this.syncMs).unref();
  }

  /** Hands out up to `max` records after those already handed out, in order. */
  next(max: number): SpoolEntry[] {
    this.flush();
    const res: SpoolEntry[] = [];
    while (res.length < max) {
      const seg = this.segs.find((s) => s.id === this.read.seg);
      if (!seg) break;
      const r = readFrames(this.path(seg.id), this.read.off, max - res.length, 4 * MiB, this.maxEntry);
      let skipped = false;
      for (let i = 0; i < r.payloads.length; i++) {
        const payload = r.payloads[i];
        const weight = payload ? this.weigh(payload) : 1;
        this.read = { seg: seg.id, off: r.ends[i], idx: this.read.idx + 1, w: this.read.w + weight };
        const seq = ++this.seq;
        if (payload) {
          this.out.push({ seq, end: { ...this.read }, weight });
          res.push({ seq, payload });
        } else {
          // A frame gone bad is passed over as if confirmed, and counted lost (once) when the delivered
          // position passes it: not at every read of it (a rewind, a restart read it again).
          const why = `spool segment ${seg.id}: a record whose bytes do not match their checksum`;
          this.out.push({ seq, end: { ...this.read }, weight: 0, lost: { n: 1, why } });
          this.acked.add(seq);
          skipped = true;
        }
      }
      if (skipped) this.settleAcked();
      // Where the lengths stop making sense the records after it cannot be found: counted when the segment goes.
      if (r.corrupt) seg.unreadableAt ??= r.stop;
      if (r.payloads.length > 0 && !r.corrupt) continue;
      // The end of this segment (or a corrupt frame in an old one): go on with the next, if any.
      const later = this.segs.find((s) => s.id > seg.id);
      if (!later || seg === this.segs[this.segs.length - 1]) break;
      this.read = { seg: later.id, off: 0, idx: 0, w: 0 };
    }
    return res;
  }

  /**
   * A handed-out record its sink cannot send (its framing damaged): passed over like a confirmed one, but counted
   * in `dropped`, not `delivered`.
   */
  reject(seq: number): void {
    const head = this.out[this.outHead];
    const o = head ? this.out[this.outHead + (seq - head.seq)] : undefined;
    if (o?.seq === seq && !o.lost) {
      o.lost = { n: o.weight, why: 'an entry its sink cannot send (damaged framing)' };
      o.weight = 0;
    }
    this.ack(seq);
  }

  /** Confirms delivery of a handed-out record; the delivered position moves over every confirmed prefix. */
  ack(seq: number): void {
    const orphan = this.orphans.get(seq);
    if (orphan !== undefined) {
      this.orphans.delete(seq);
      this.st.delivered += orphan;
      return;
    }
    // Stale (handed out before a rewind, or never): nothing to move.
    if (this.outHead >= this.out.length || seq < this.out[this.outHead].seq || seq > this.seq) return;
    this.acked.add(seq);
    this.settleAcked();
  }

  /** Moves the delivered position over every confirmed prefix of what was handed out. */
  private settleAcked(): void {
    let moved = false;
    while (this.outHead < this.out.length && this.acked.has(this.out[this.outHead].seq)) {
      const o = this.out[this.outHead++];
      this.acked.delete(o.seq);
      this.done = o.end;
      this.st.delivered += o.weight;
      if (o.lost) this.lose(o.lost.n, o.lost.why);
      moved = true;
    }
    if (this.outHead > 4096 && this.outHead * 2 > this.out.length) {
      this.out = this.out.slice(this.outHead);
      this.outHead = 0;
    }
    if (!moved) return;
    this.dropDelivered();
    this.cursorTimer ??= setTimeout(() => {
      this.cursorTimer = undefined;
      this.writeCursor();
    }, CURSOR_MS).unref();
  }

  /** Forgets what was handed out and not confirmed: the next `next()` starts again from the delivered position. */
  rewind(): void {
    let lost = 0;
    for (const w of this.orphans.values()) lost += w;
    this.lose(lost, 'spool full: records in flight when their segment was dropped were not confirmed');
    this.orphans.clear();
    this.out = [];
    this.outHead = 0;
    this.acked.clear();
    this.read = { ...this.done };
  }

  /** Records handed out and not yet confirmed. */
  get inflight(): number {
    return this.out.length - this.outHead;
  }

  private writeCursor(): void {
    if (!this.closed) saveCursor(this.dir, this.done);
  }

  stats(): SpoolStats {
    return {
      ...this.st,
      pending: this.pendingCount(),
      bytes: this.totalBytes(),
      segments: this.segs.filter((s) => s.bytes > 0).length,
    };
  }

  /** Writes and syncs what is buffered, saves the position and releases the directory. Records stay for the next run. */
  close(): void {
    if (this.closed) return;
    this.flush();
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.cursorTimer) clearTimeout(this.cursorTimer);
    this.writeCursor();
    this.closed = true;
    if (this.wfd >= 0) {
      fdatasyncSync(this.wfd);
      closeSync(this.wfd);
      this.wfd = -1;
    }
    // An empty segment of this run is not kept.
    const active = this.segs[this.segs.length - 1];
    if (active.bytes === 0) rmSync(this.path(active.id), { force: true });
    this.lock.release();
  }
}

export const SPOOL_FRAME_OVERHEAD = HEADER;
