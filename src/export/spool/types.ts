/** The spool's options, counters and internal positions. */
import { FlowgrabError } from '../../errors.js';

export interface SpoolOptions {
  dir: string;
  /** Bytes of segments kept at most (default 256 MiB); beyond that the oldest segment goes. */
  maxBytes?: number;
  /** Size of one segment file (default maxBytes/8, between 64 KiB and 64 MiB). */
  segmentBytes?: number;
  /** fdatasync at most this long after a write (default 1000 ms; 0: after every write). */
  syncMs?: number;
  /** Largest record (default 1 MiB); larger ones are refused. */
  maxEntryBytes?: number;
  /** Called when records are dropped by the size limit. */
  onDrop?: (n: number, why: string) => void;
  /**
   * How many records an entry holds (default 1): an IPFIX message holds many. Every count in the stats
   * (appended, delivered, dropped, pending, recovered) is in these units.
   */
  weigh?: (payload: Buffer) => number;
}

export interface SpoolStats {
  /** Records appended by this process. */
  appended: number;
  /** Records whose delivery was confirmed. */
  delivered: number;
  /** Records removed undelivered by the size limit. */
  dropped: number;
  /** Records waiting for delivery (including those handed out and not yet confirmed). */
  pending: number;
  /** Records found waiting when the spool was opened (left by an earlier run). */
  recovered: number;
  bytes: number;
  segments: number;
}

export interface SpoolEntry {
  seq: number;
  payload: Buffer;
}

export interface Seg {
  id: number;
  bytes: number;
  count: number;
  weight: number;
  /** Where the segment stops being readable (a length that cannot be): what is after it is counted lost when the segment is removed. */
  unreadableAt?: number;
}

/** A place in a segment: byte offset, entries before it (`idx`) and their weight (`w`). */
export interface Pos {
  seg: number;
  off: number;
  idx: number;
  w: number;
}

export interface Out {
  seq: number;
  end: Pos;
  weight: number;
  /**
   * Passed over rather than delivered (its bytes failed their checksum, or its sink could not send it): counted
   * lost when the delivered position passes it, once, whatever rewinds and restarts read it again.
   */
  lost?: { n: number; why: string };
}

export const MiB = 1024 * 1024;
export const FLUSH_BYTES = 256 * 1024;
export const CURSOR_MS = 200;

export function bounded(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `spool ${name} must be an integer in [${min}, ${max}], got ${v}`,
    );
  return v;
}
