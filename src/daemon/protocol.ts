/**
 * flowgrabd's wire protocol: frames of a 4-byte big-endian length and a
 * UTF-8 JSON body, version PROTOCOL_VERSION, every frame validated by zod in
 * both directions (the daemon checks requests, the client checks replies and
 * events). A client may ask in its hello for records in compact binary
 * frames (compact.ts), checked as strictly. Requests carry an `id` answered by one reply; the daemon also
 * sends events (records, loss, a flow closed by the daemon).
 */
import { z } from 'zod';
import { type ErrorCode, FlowgrabError } from '../errors.js';
import { GraphSpec } from '../filters/spec.js';
import { COMPACT_MARK, decodeCompact, readCompactHead } from './compact.js';

export const PROTOCOL_VERSION = 1;
/** The largest frame the daemon takes from a client, and the size the daemon cuts its records frames to. */
export const MAX_FRAME = 1 << 20;
/**
 * The largest frame a client takes from the daemon: one record alone may be larger than MAX_FRAME (a window()
 * of many records); the daemon drops and counts a record whose frame would be over this.
 */
export const MAX_SERVER_FRAME = 16 << 20;

const Id = z.number().int().nonnegative();
const Flow = z.number().int().nonnegative();
/** A packet mark, mask or id: u32. */
const Mark = z.number().int().min(0).max(0xffffffff);
const base = { v: z.literal(PROTOCOL_VERSION), id: Id };

/**
 * Graph text, or a GraphSpec: chosen by the value's type, so a refused spec says why (a union says only
 * "Invalid input" when neither matches).
 */
const GraphText = z.string().max(65536);
const GraphInput = z.unknown().transform((v, ctx): string | GraphSpec => {
  const r = typeof v === 'string' ? GraphText.safeParse(v) : GraphSpec.safeParse(v);
  if (r.success) return r.data;
  for (const i of r.error.issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path });
  return z.NEVER;
});

export const Request = z.discriminatedUnion('op', [
  // `records`: the form of record frames from now on (compact.ts); JSON when not asked. A daemon older than
  // compact frames refuses the key (strict), and connect() then says hello again without it.
  z
    .object({ ...base, op: z.literal('hello'), records: z.enum(['json', 'compact']).optional() })
    .strict(),
  z
    .object({
      ...base,
      op: z.literal('create'),
      name: z.string().max(200).optional(),
      bufferRecords: z.number().int().positive().max(1_000_000).optional(),
      overflow: z.enum(['drop-oldest', 'drop-newest']).optional(),
    })
    .strict(),
  z.object({ ...base, op: z.literal('populate'), flow: Flow, graph: GraphInput }).strict(),
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

/** Error codes on the wire are the library's own (errors.ts), so a client rebuilds the same FlowgrabError. */
const ERROR_CODES = [
  'FG_ERR_NETLINK',
  'FG_ERR_DECODE',
  'FG_ERR_SYSCALL',
  'FG_ERR_CLOSED',
  'FG_ERR_TIMEOUT',
  'FG_ERR_PERMISSION',
  'FG_ERR_NETNS',
  'FG_ERR_INVALID_ARGUMENT',
  'FG_ERR_INVALID_STATE',
  'FG_ERR_FIREWALL',
  'FG_ERR_BUSY',
  'FG_ERR_GRAPH',
  'FG_ERR_DENIED',
  'FG_ERR_PROTOCOL',
  'FG_ERR_INTERNAL',
] as const satisfies readonly ErrorCode[];
// Every ErrorCode is listed: adding one to errors.ts without adding it here fails to compile.
type Missing = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const _allListed: Missing extends never ? true : Missing = true;
void _allListed;

const Text = z.string().max(MAX_FRAME);
export const ErrorBody = z.object({
  code: z.enum(ERROR_CODES),
  message: Text,
  issues: z
    .array(z.object({ code: z.string(), path: z.array(z.union([z.string(), z.number()])), message: Text }))
    .max(10_000)
    .optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

const v = z.literal(PROTOCOL_VERSION);
/** An answer to request `id`; a successful one carries the op's own fields (checked where they are used). */
export const Reply = z.discriminatedUnion('ok', [
  z.looseObject({ v, id: Id, ok: z.literal(true) }),
  z.object({ v, id: Id.nullable(), ok: z.literal(false), error: ErrorBody }),
]);
export type Reply =
  | { v: typeof PROTOCOL_VERSION; id: number; ok: true; [k: string]: unknown }
  | { v: typeof PROTOCOL_VERSION; id: number | null; ok: false; error: ErrorBody };

const Notice = z.looseObject({
  kind: z.string().max(64),
  message: Text,
  count: z.number().int().nonnegative().optional(),
  ts: z.number(),
});
/** A flow's loss notice (sources/notice.ts); keys beyond these are dropped, the client names the flow itself. */
const LossNotice = z.object({
  kind: z.enum(['loss', 'resync', 'warning']),
  message: Text,
  count: z.number().int().nonnegative().optional(),
  ts: z.number(),
  source: z.string().max(200),
  where: z.enum(['kernel', 'reader', 'decode']).optional(),
  netns: z.string().max(200).optional(),
});
const NodeStats = z.object({
  node: z.string().max(200),
  path: z.string().max(4096),
  in: z.number().nonnegative(),
  out: z.number().nonnegative(),
  dropped: z.number().nonnegative(),
});
/** A flow's stats as the daemon has them (flow/handle.ts FlowStats, plus what the daemon sent or dropped). */
export const RemoteStats = z.looseObject({
  state: z.enum(['created', 'populated', 'instantiated', 'active', 'paused', 'closed']),
  nodes: z.array(NodeStats).max(10_000),
  buffer: z.object({
    capacity: z.number(),
    buffered: z.number(),
    highWater: z.number(),
    dropped: z.number(),
    delivered: z.number(),
  }),
  missed: z.number(),
  sent: z.number().optional(),
  droppedToClient: z.number().optional(),
});
export type RemoteStats = z.infer<typeof RemoteStats>;

const PacketJson = z.looseObject({
  packetId: Mark,
  payload: z
    .string()
    .max(2 * MAX_FRAME)
    .optional(),
});

/** What the daemon sends unasked: a flow's records and loss, a flow closed or ended, a queue's packets and notices. */
export const Event = z.discriminatedUnion('ev', [
  // `nodes`: the graph's per-node counts, sent with records now and then (stats() of a remote handle shows them).
  z.object({
    v,
    ev: z.literal('records'),
    flow: Flow,
    records: z.array(z.unknown()),
    nodes: NodeStats.array().optional(),
  }),
  z.object({ v, ev: z.literal('lost'), flow: Flow, notice: LossNotice }),
  z.object({ v, ev: z.literal('closed'), flow: Flow, reason: Text }),
  z.object({ v, ev: z.literal('end'), flow: Flow, error: ErrorBody.optional() }),
  z.object({ v, ev: z.literal('packets'), queue: Flow, packets: z.array(PacketJson) }),
  z.object({ v, ev: z.literal('queue-notice'), queue: Flow, notice: Notice }),
]);
export type Event = z.infer<typeof Event>;

/** Zod's issues as one line, for the error that says why a frame was refused. */
export function issuesText(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`)
    .join('; ')
    .slice(0, 2000);
}

/**
 * Parses and checks one frame from the daemon. A frame that is not JSON or
 * does not follow the protocol is a FlowgrabError (FG_ERR_PROTOCOL): the
 * client cannot trust the stream after it.
 */
export type ServerMessage = { event: Event; reply?: undefined } | { reply: Reply; event?: undefined };

/**
 * A frame from the daemon is an event when it has `ev`, else a reply; each is checked by its own schema. A compact
 * records frame (compact.ts) is taken only when `compact` says this connection asked for them.
 */
export function parseServerFrame(frame: Buffer, compact = false): ServerMessage {
  if (frame.length > 0 && frame[0] === COMPACT_MARK) {
    if (!compact)
      throw new FlowgrabError(
        'FG_ERR_PROTOCOL',
        'flowgrabd sent a compact records frame, which this connection did not ask for',
        { op: 'daemon' },
      );
    return { event: parseCompactFrame(frame) };
  }
  let json: unknown;
  try {
    json = JSON.parse(frame.toString('utf8'));
  } catch (err) {
    throw new FlowgrabError('FG_ERR_PROTOCOL', 'flowgrabd sent a frame that is not JSON', { op: 'daemon', cause: err });
  }
  const isEvent = typeof json === 'object' && json !== null && 'ev' in json;
  const r = (isEvent ? Event : Reply).safeParse(json);
  if (!r.success)
    throw new FlowgrabError(
      'FG_ERR_PROTOCOL',
      `flowgrabd sent a malformed ${isEvent ? 'event' : 'reply'}: ${issuesText(r.error)}`,
      { op: 'daemon', cause: r.error },
    );
  return isEvent ? { event: r.data as Event } : { reply: r.data as Reply };
}

const Nodes = NodeStats.array().max(10_000);

/** A compact records frame as the `records` event the JSON form gives, its node counts checked by the same schema. */
function parseCompactFrame(frame: Buffer): Event {
  const head = readCompactHead(frame);
  const event: Event = { v: PROTOCOL_VERSION, ev: 'records', flow: head.flow, records: decodeCompact(frame, head.at) };
  if (head.nodes) {
    let json: unknown;
    try {
      json = JSON.parse(head.nodes);
    } catch (err) {
      throw new FlowgrabError('FG_ERR_PROTOCOL', 'flowgrabd sent a compact records frame whose nodes are not JSON', {
        op: 'daemon',
        cause: err,
      });
    }
    const r = Nodes.safeParse(json);
    if (!r.success)
      throw new FlowgrabError('FG_ERR_PROTOCOL', `flowgrabd sent a malformed event: nodes: ${issuesText(r.error)}`, {
        op: 'daemon',
        cause: r.error,
      });
    event.nodes = r.data;
  }
  return event;
}

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

/** A frame of JSON text given in three parts, the middle one already UTF-8 (shared by several frames). */
export function frameParts(head: string, body: Buffer, tail: string): Buffer {
  const h = Buffer.byteLength(head, 'utf8');
  const t = Buffer.byteLength(tail, 'utf8');
  const len = h + body.length + t;
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32BE(len, 0);
  out.write(head, 4, 'utf8');
  body.copy(out, 4 + h);
  out.write(tail, 4 + h + body.length, 'utf8');
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

  /** Every frame `chunk` completes (with what was held before it). */
  push(chunk: Buffer): Buffer[] {
    this.add(chunk);
    const out: Buffer[] = [];
    for (let f = this.next(); f; f = this.next()) out.push(f);
    return out;
  }

  /** Holds `chunk`; frames are taken with next(), as many as the reader wants at a time. */
  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The next complete frame's body, or undefined; throws at a length over the limit. */
  next(): Buffer | undefined {
    if (this.size < 4) return undefined;
    const len = this.peekLength();
    if (len > this.max)
      throw new FlowgrabError('FG_ERR_DECODE', `frame of ${len} bytes is over the ${this.max}-byte limit`, {
        op: 'frame',
      });
    if (this.size < 4 + len) return undefined;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    const rest = all.subarray(4 + len);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return all.subarray(4, 4 + len);
  }

  private peekLength(): number {
    if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks, this.size)]; // once per frame
    return this.chunks[0].readUInt32BE(0);
  }
}

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/** What goes on the wire for a failure: a FlowgrabError's code and issues; anything else is FG_ERR_INTERNAL. */
export function errorBody(err: unknown): ErrorBody {
  const e = (err ?? {}) as { code?: unknown; message?: unknown; issues?: ErrorBody['issues'] };
  const known = err instanceof FlowgrabError && KNOWN_CODES.has(e.code as string);
  const body: ErrorBody = {
    code: known ? (e.code as ErrorCode) : 'FG_ERR_INTERNAL',
    message: String(e.message ?? err),
  };
  if (Array.isArray(e.issues)) body.issues = e.issues;
  return body;
}

/** A failure the daemon states itself (a bad frame, a timeout): the same body a thrown FlowgrabError gives. */
export function failure(code: ErrorCode, message: string): ErrorBody {
  return { code, message };
}
