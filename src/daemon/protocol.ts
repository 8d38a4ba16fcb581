/**
 * flowgrabd's wire protocol: frames of a 4-byte big-endian length and a
 * UTF-8 JSON body, version 1, every frame validated by zod. Requests carry
 * an `id` answered by one reply; the daemon also sends events (records,
 * loss, a flow closed by the daemon).
 */
import { z } from 'zod';
import { FlowgrabError } from '../errors.js';
import { GraphSpec } from '../filters/spec.js';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME = 1 << 20;

const Id = z.number().int().nonnegative();
const Flow = z.number().int().nonnegative();
/** A packet mark, mask or id: u32. */
const Mark = z.number().int().min(0).max(0xffffffff);
const base = { v: z.literal(PROTOCOL_VERSION), id: Id };

export const Request = z.discriminatedUnion('op', [
  z.object({ ...base, op: z.literal('hello') }).strict(),
  z
    .object({
      ...base,
      op: z.literal('create'),
      name: z.string().max(200).optional(),
      bufferRecords: z.number().int().positive().max(1_000_000).optional(),
      overflow: z.enum(['drop-oldest', 'drop-newest']).optional(),
    })
    .strict(),
  z
    .object({ ...base, op: z.literal('populate'), flow: Flow, graph: z.union([z.string().max(65536), GraphSpec]) })
    .strict(),
  z.object({ ...base, op: z.enum(['instantiate', 'activate', 'pause', 'close', 'stats']), flow: Flow }).strict(),
  z.object({ ...base, op: z.literal('status') }).strict(),
  z
    .object({
      ...base,
      op: z.literal('queue'),
      mark: Mark,
      mask: Mark.optional(),
      timeoutMs: z.number().int().positive().max(3_600_000).optional(),
    })
    .strict(),
  z
    .object({
      ...base,
      op: z.literal('verdict'),
      queue: Flow,
      verdicts: z
        .array(
          z.object({ packetId: Mark, verdict: z.enum(['accept', 'drop', 'repeat']), mark: Mark.optional() }).strict(),
        )
        .min(1)
        .max(4096),
    })
    .strict(),
  z.object({ ...base, op: z.literal('unqueue'), queue: Flow }).strict(),
]);
export type Request = z.infer<typeof Request>;

export interface ErrorBody {
  code: string;
  message: string;
  issues?: { code: string; path: (string | number)[]; message: string }[];
}

export type Reply =
  | { v: 1; id: number; ok: true; [k: string]: unknown }
  | { v: 1; id: number | null; ok: false; error: ErrorBody };

export type Event =
  | { v: 1; ev: 'records'; flow: number; records: unknown[] }
  | { v: 1; ev: 'lost'; flow: number; notice: unknown }
  | { v: 1; ev: 'closed'; flow: number; reason: string }
  | { v: 1; ev: 'end'; flow: number; error?: ErrorBody }
  | { v: 1; ev: 'packets'; queue: number; packets: Record<string, unknown>[] }
  | { v: 1; ev: 'queue-notice'; queue: number; notice: Record<string, unknown> };

export function encodeFrame(msg: unknown): Buffer {
  return frameText(JSON.stringify(msg));
}

/** A frame around JSON text already made. */
export function frameText(json: string): Buffer {
  const len = Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32BE(len, 0);
  out.write(json, 4, 'utf8');
  return out;
}

/**
 * Splits a byte stream into frames; a frame over MAX_FRAME is an error (the
 * stream cannot be resynchronised). Chunks of an unfinished frame are kept
 * as they came and joined once, when the frame is complete: a client
 * trickling a frame a byte at a time costs linear, not quadratic, copying.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly max = MAX_FRAME) {}

  /** Bytes of an unfinished frame held (0 between frames). */
  get held(): number {
    return this.size;
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: Buffer[] = [];
    while (this.size >= 4) {
      const len = this.peekLength();
      if (len > this.max)
        throw new FlowgrabError('FG_ERR_DECODE', `frame of ${len} bytes is over the ${this.max}-byte limit`, {
          op: 'frame',
        });
      if (this.size < 4 + len) break;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
      out.push(all.subarray(4, 4 + len));
      const rest = all.subarray(4 + len);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return out;
  }

  private peekLength(): number {
    if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks, this.size)]; // once per frame
    return this.chunks[0].readUInt32BE(0);
  }
}

export function errorBody(err: unknown): ErrorBody {
  const e = err as { code?: unknown; message?: unknown; issues?: ErrorBody['issues'] };
  const body: ErrorBody = {
    code: typeof e.code === 'string' ? e.code : 'FG_ERR_INTERNAL',
    message: String(e.message ?? err),
  };
  if (Array.isArray(e.issues)) body.issues = e.issues;
  return body;
}
