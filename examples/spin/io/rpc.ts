/**
 * JSON-RPC 2.0 as spind answers it (docs/spin-protocol.md §1.2): named params
 * only, exact arity, JSON numbers read as integers, spind's error codes and
 * messages, no `result` key for methods without one, the bare result for
 * notifications. Beyond spind: batches, and replies of any size.
 */
import { z } from 'zod';

export type ArgType = 'integer' | 'string' | 'complex';

export interface RpcMethod {
  name: string;
  args: readonly (readonly [string, ArgType])[];
  /** false: the success reply carries no `result` (spind's void methods). */
  hasResult: boolean;
  run(params: Record<string, unknown>): unknown;
  /** `params: ""` is accepted as no params (the get_devices call of spind's design note, docs/spin-protocol.md §1.5). */
  emptyStringParams?: boolean;
  /** Arguments beyond spind's that a caller may add (e.g. `force`); not listed by list_rpc_methods. */
  optional?: readonly (readonly [string, ArgType])[];
}

/** A method failure with spind's code (-1 unless stated). */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code = -1,
  ) {
    super(message);
  }
}

const ARG_SCHEMA: Record<ArgType, z.ZodType> = {
  // spind reads `valueint`: fractions are truncated.
  integer: z
    .number()
    .finite()
    .transform((n) => Math.trunc(n)),
  string: z.string(),
  complex: z.union([z.boolean(), z.null(), z.array(z.unknown()), z.record(z.string(), z.unknown())]),
};

const Envelope = z.object({ jsonrpc: z.literal('2.0') }).loose();

type Reply = Record<string, unknown>;

function errorReply(req: unknown, code: number, message: string): Reply {
  const r: Reply = { jsonrpc: '2.0' };
  if (isObject(req) && 'id' in req) r.id = req.id;
  r.error = { code, message };
  return r;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Requests in one batch; a longer batch gets one error reply (each call costs work, bounded here). */
export const MAX_BATCH = 1000;

export interface DispatchOptions {
  /** Runs a whole batch (the core applies its firewall changes once, at the end). */
  batch?: <T>(run: () => Promise<T>) => Promise<T>;
}

export class RpcDispatcher {
  private readonly methods = new Map<string, { m: RpcMethod; schema: z.ZodType }>();

  constructor(
    methods: RpcMethod[],
    private readonly opts: DispatchOptions = {},
  ) {
    for (const m of methods) {
      const shape: Record<string, z.ZodType> = {};
      for (const [name, type] of m.args) shape[name] = ARG_SCHEMA[type];
      for (const [name, type] of m.optional ?? []) shape[name] = ARG_SCHEMA[type].optional();
      this.methods.set(m.name, { m, schema: z.object(shape).strict() });
    }
  }

  /** list_rpc_methods: sorted by name, spind's field names. */
  describe(): unknown[] {
    return [...this.methods.values()]
      .map(({ m }) => ({
        'rpc-name': m.name,
        'rpc-args': m.args.map(([n, t]) => ({ 'rpc-arg-name': n, 'rpc-arg-type': t })),
        'rpc-result-type': 'complex',
      }))
      .sort((a, b) => (a['rpc-name'] < b['rpc-name'] ? -1 : 1));
  }

  /** One parsed request or a batch; undefined when nothing is to be sent. */
  async handle(request: unknown): Promise<unknown | undefined> {
    if (!Array.isArray(request)) return this.one(request);
    if (request.length === 0) return errorReply(undefined, 1, 'Wrong JSON-RPC version, expected 2.0');
    if (request.length > MAX_BATCH) return errorReply(undefined, -1, `Batch too large (at most ${MAX_BATCH} requests)`);
    const all = async () => {
      const replies: unknown[] = [];
      for (const r of request) {
        const reply = await this.one(r);
        if (reply !== undefined) replies.push(reply);
      }
      return replies;
    };
    const replies = await (this.opts.batch ? this.opts.batch(all) : all());
    return replies.length > 0 ? replies : undefined;
  }

  /** A request body as text (socket, HTTP): unparseable text gets code 1, as in spind. */
  async handleText(text: string): Promise<string | undefined> {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      return JSON.stringify(errorReply(undefined, 1, 'Wrong JSON-RPC version, expected 2.0'));
    }
    const reply = await this.handle(req);
    return reply === undefined ? undefined : JSON.stringify(reply);
  }

  private async one(req: unknown): Promise<unknown | undefined> {
    if (!Envelope.safeParse(req).success) return errorReply(req, 1, 'Wrong JSON-RPC version, expected 2.0');
    const r = req as Record<string, unknown>;
    if (typeof r.method !== 'string') return errorReply(r, 2, "'method' object must be a string");
    const entry = this.methods.get(r.method);
    let params: unknown = r.params === undefined ? {} : r.params;
    if (entry?.m.emptyStringParams && params === '') params = {};
    if (!isObject(params)) return errorReply(r, 3, "'params' object must be a dict");
    if (!entry) return errorReply(r, -1, 'No such function registered');
    const { m, schema } = entry;
    const names = Object.keys(params);
    const optional = m.optional ?? [];
    const extra = names.filter((n) => optional.some(([a]) => a === n)).length;
    if (names.length - extra !== m.args.length) return errorReply(r, -1, 'Wrong number of arguments');
    if (names.some((n) => !m.args.some(([a]) => a === n) && !optional.some(([a]) => a === n)))
      return errorReply(r, -1, 'No such argument registered');
    const parsed = schema.safeParse(params);
    if (!parsed.success) return errorReply(r, -1, 'Wrong type of argument');
    let result: unknown;
    try {
      result = await m.run(parsed.data as Record<string, unknown>);
    } catch (err) {
      if (err instanceof RpcError) return errorReply(r, err.code, err.message);
      return errorReply(r, -1, err instanceof Error ? err.message : String(err));
    }
    if (!('id' in r)) return m.hasResult ? result : undefined;
    const reply: Reply = { jsonrpc: '2.0', id: r.id };
    if (m.hasResult) reply.result = result;
    return reply;
  }
}
