/**
 * NDJSON sink: one JSON record per line, to a file or stdout. Lines are
 * batched into large synchronous writes; with `rotateBytes` the file is
 * rotated before it would grow past that size (FILE → FILE.1 → … FILE.keep,
 * the oldest removed), so no line is ever split between files. A file that
 * cannot be written, renamed or opened again (its directory removed, the
 * disk full) costs the records of that moment, counted as dropped with the
 * error; the sink tries to open the file again at most once a second.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { FlowgrabError } from '../errors.js';
import { admitRecord, countError, emptyStats, type FlowSink, type SinkStats } from './sink.js';

/** Options of ndjsonSink(): the file, rotation, line format. */
export interface NdjsonSinkOptions {
  /** A file path, or `-` / undefined for stdout. */
  file?: string;
  /** Rotate before the file would exceed this many bytes (0: never). */
  rotateBytes?: number;
  /** Rotated files kept (default 5). */
  keep?: number;
  /** How records become lines (default JSON.stringify). */
  format?: (r: unknown) => string;
}

const BATCH = 256 * 1024;

/** Appending, created 0600 if missing, and ELOOP for a symlink (give the file itself, not a link to it). */
// Never blocking: opening a FIFO someone planted, with nobody reading it, would hang the exporter for good.
const APPEND_NOFOLLOW =
  constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

class NdjsonSink implements FlowSink {
  readonly kind = 'ndjson';
  private readonly st = emptyStats();
  private fd: number;
  private size = 0;
  private lines: string[] = [];
  private pendingBytes = 0;
  private pendingRecords = 0;
  private scheduled = false;
  private closed = false;
  /** No opening of the file again before this (ms), after one failed. */
  private retryAt = 0;
  /** No rotation before this (ms), after one failed. */
  private rotateRetryAt = 0;

  constructor(private readonly o: Required<Omit<NdjsonSinkOptions, 'file'>> & { file?: string }) {
    this.fd = this.open();
  }

  private open(): number {
    if (!this.o.file) return 1;
    try {
      // Records are everyone's traffic: made 0600; never through a symlink, never into another user's file (in a
      // shared directory someone may have made the file, or a link, before us).
      const fd = openSync(this.o.file, APPEND_NOFOLLOW, 0o600);
      const st = fstatSync(fd);
      const me = process.geteuid?.() ?? 0;
      // A FIFO or socket would hand the records to whoever reads it; a second name (hard link) would append them
      // to a file made for something else. A device (/dev/null) is fine.
      const why = !(st.isFile() || st.isCharacterDevice())
        ? 'it is not a regular file (a FIFO?)'
        : st.isFile() && st.uid !== me
          ? `it belongs to uid ${st.uid}, not to this process (uid ${me})`
          : st.isFile() && st.nlink > 1
            ? `it has ${st.nlink} names (a hard link to another file?)`
            : undefined;
      if (why) {
        closeSync(fd);
        throw new Error(`${why}: refusing to write records into it`);
      }
      this.size = st.size;
      return fd;
    } catch (err) {
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `cannot open ${this.o.file}: ${(err as Error).message}`, {
        op: 'ndjson.open',
        cause: err,
      });
    }
  }

  write(record: unknown): void {
    const line = admitRecord(this.st, this.closed, record, this.o.format);
    if (line === undefined) return;
    const bytes = Buffer.byteLength(line) + 1;
    if (
      this.o.rotateBytes > 0 &&
      this.size + this.pendingBytes + bytes > this.o.rotateBytes &&
      this.size + this.pendingBytes > 0 &&
      Date.now() >= this.rotateRetryAt
    ) {
      this.writeOut();
      this.rotate();
    }
    this.lines.push(line);
    this.pendingBytes += bytes;
    this.pendingRecords++;
    if (this.pendingBytes >= BATCH) this.writeOut();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.writeOut();
      });
    }
  }

  private writeOut(): void {
    if (this.lines.length === 0) return;
    if (this.fd < 0 && !this.reopen()) {
      // Nowhere to write (the file could not be opened again): these records are lost, and said to be.
      this.st.dropped += this.pendingRecords;
      this.lines = [];
      this.pendingBytes = 0;
      this.pendingRecords = 0;
      return;
    }
    const buf = Buffer.from(`${this.lines.join('\n')}\n`);
    const n = this.pendingRecords;
    this.lines = [];
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off);
      this.size += buf.length;
      this.st.sent += n;
      this.st.messages++;
    } catch (err) {
      this.st.dropped += n;
      countError(this.st, 'write', err);
    }
  }

  private rotate(): void {
    const f = this.o.file;
    if (!f) return;
    // Forgotten first: a closed descriptor's number may be given to another file, which writes must not reach.
    const fd = this.fd;
    this.fd = -1;
    try {
      if (fd >= 0) closeSync(fd);
      const name = (i: number) => (i === 0 ? f : `${f}.${i}`);
      if (existsSync(name(this.o.keep))) rmSync(name(this.o.keep));
      for (let i = this.o.keep - 1; i >= 0; i--) if (existsSync(name(i))) renameSync(name(i), name(i + 1));
    } catch (err) {
      countError(this.st, 'rotate', err);
      // Not again for a second: a rotation that fails (something in the way) would otherwise be tried per record.
      this.rotateRetryAt = Date.now() + 1000;
    }
    this.retryAt = 0;
    this.reopen();
  }

  /** Opens the file again (after a rotation, or a failure); false when it cannot, now or within the second. */
  private reopen(): boolean {
    if (this.closed || !this.o.file) return false;
    const now = Date.now();
    if (now < this.retryAt) return false;
    try {
      this.fd = this.open();
      return true;
    } catch (err) {
      this.retryAt = now + 1000;
      countError(this.st, 'open', err);
      return false;
    }
  }

  async flush(): Promise<void> {
    this.writeOut();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.writeOut();
    this.closed = true;
    if (this.o.file && this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  stats(): SinkStats {
    return { ...this.st };
  }
}

/** A sink writing each record as one JSON line to a file (rotated by size) or stdout. */
export function ndjsonSink(o: NdjsonSinkOptions = {}): FlowSink {
  const rotateBytes = o.rotateBytes ?? 0;
  const keep = o.keep ?? 5;
  if (!Number.isInteger(rotateBytes) || rotateBytes < 0)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `rotateBytes must be an integer ≥ 0, got ${rotateBytes}`);
  if (!Number.isInteger(keep) || keep < 1)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `keep must be an integer ≥ 1, got ${keep}`);
  if (rotateBytes > 0 && (!o.file || o.file === '-'))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'rotation needs a file, not stdout');
  return new NdjsonSink({
    file: o.file === '-' ? undefined : o.file,
    rotateBytes,
    keep,
    format: o.format ?? JSON.stringify,
  });
}
