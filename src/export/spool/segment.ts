/**
 * The spool's on-disk format: segment files of length-prefixed, checksummed
 * frames, appended and never rewritten. A frame is
 * `u32 length | u32 crc32(payload) | payload` (big-endian). A process killed
 * in the middle of a write leaves at most one torn frame at the end of the
 * newest segment; the spool, when opened, appends to a fresh segment instead
 * of after that tail. A frame whose payload does not match its checksum (a
 * bit gone bad) is skipped: its length still says where the next one starts,
 * and the caller counts it lost. A length that cannot be (zero, over the
 * limit, past the data) ends what can be read of the segment: the caller
 * counts that as lost too.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';

export const HEADER = 8;

export function frame(payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(HEADER + payload.length);
  b.writeUInt32BE(payload.length, 0);
  b.writeUInt32BE(crc32(payload), 4);
  payload.copy(b, HEADER);
  return b;
}

export const segmentName = (id: number): string => `${String(id).padStart(12, '0')}.seg`;
export const SEGMENT_RE = /^(\d{12})\.seg$/;

export interface ReadResult {
  /** The frames' payloads in order; null for a frame skipped because its payload does not match its checksum. */
  payloads: (Buffer | null)[];
  /** Offsets just past each frame. */
  ends: number[];
  /** Where reading stopped: an unreadable length, a torn frame, or the end of the data read. */
  stop: number;
  /** True when reading stopped at a length that cannot be (not just at the end of the file). */
  corrupt: boolean;
}

/**
 * Reads whole frames from `path` starting at `offset`, up to `max` of them
 * and about `maxBytes` of data (at least one frame when there is one).
 * Frames larger than `limit` are treated as corruption: a garbage length
 * must never make the reader allocate gigabytes.
 */
export function readFrames(path: string, offset: number, max: number, maxBytes: number, limit: number): ReadResult {
  const out: ReadResult = { payloads: [], ends: [], stop: offset, corrupt: false };
  let fd: number;
  try {
    // Never through a symlink, never a device (a segment linked to /dev/zero read zero-length frames forever).
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return out;
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    out.corrupt = true;
    return out;
  }
  try {
    // Sized for the request (a few records per call in the healthy case), at most 1 MiB at a time.
    let chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, Math.max(16 * 1024, Math.min(maxBytes, max * 512))));
    let have = readSync(fd, chunk, 0, chunk.length, offset);
    let base = offset;
    let at = 0;
    while (out.payloads.length < max) {
      if (have - at < HEADER) {
        // Refill from the current frame on.
        base += at;
        at = 0;
        have = readSync(fd, chunk, 0, chunk.length, base);
        if (have < HEADER) break;
      }
      const len = chunk.readUInt32BE(at);
      // No entry is empty: eight zero bytes (a tail a crash left zeroed) pass the checksum but are no frame.
      if (len > limit || len === 0) {
        out.corrupt = true;
        break;
      }
      if (have - at < HEADER + len) {
        if (HEADER + len > chunk.length) chunk = Buffer.allocUnsafe(HEADER + len);
        base += at;
        at = 0;
        have = readSync(fd, chunk, 0, chunk.length, base);
        if (have < HEADER + len) break; // torn at the end, or still being written
      }
      const payload = chunk.subarray(at + HEADER, at + HEADER + len);
      out.payloads.push(crc32(payload) === chunk.readUInt32BE(at + 4) ? Buffer.from(payload) : null);
      at += HEADER + len;
      out.stop = base + at;
      out.ends.push(out.stop);
      if (out.stop - offset >= maxBytes) break;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Counts (and weighs) the valid frames of a segment from `offset`; `stop` is where the valid data ends. */
export function scanSegment(
  path: string,
  offset: number,
  limit: number,
  weigh: (payload: Buffer) => number = () => 1,
): { count: number; weight: number; stop: number; corrupt: boolean } {
  let count = 0;
  let weight = 0;
  let at = offset;
  for (;;) {
    const r = readFrames(path, at, 65536, 16 * 1024 * 1024, limit);
    count += r.payloads.length;
    for (const p of r.payloads) weight += p ? weigh(p) : 1;
    if (r.payloads.length === 0 || r.corrupt) return { count, weight, stop: r.stop, corrupt: r.corrupt };
    at = r.stop;
  }
}
