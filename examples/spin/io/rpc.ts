/**
 * JSON-RPC 2.0 as spind answers it (docs/spin-protocol.md §1.2): named params
 * only, exact arity, JSON numbers read as integers, spind's error codes and
 * messages, no `result` key for methods without one, the bare result for
 * notifications. Beyond spind: batches, and replies of any size.
 */
import { z } from 'zod';
import { SpinError } from '../domain/errors.js';

export type ArgType = 'integer' | 'string' | 'complex';

/** spind's argument types as schemas; a method's params are typed by them (z.infer). */
export const arg = {
  // spind reads `valueint`: fractions are truncated.
  integer: z
    .number()
    .finite()
    .transform((n) => Math.trunc(n)),
  string: z.string(),
  complex: z.union([z.boolean(), z.null(), z.array(z.unknown()), z.record(z.string(), z.unknown())]),
} as const;

type ArgSchema = (typeof arg)[ArgType];
/** A method's arguments in spind's order (the order list_rpc_methods shows). */
export type Args = Record<string, ArgSchema>;

const ARG_TYPE = new Map<z.ZodType, ArgType>(Object.entries(arg).map(([t, s]) => [s, t as ArgType]));

/** The params a method's run gets: its arguments parsed, the optional ones possibly absent. */
export type Params<A extends Args, O extends Args> = z.output<z.ZodObject<A>> & Partial<z.output<z.ZodObject<O>>>;

export interface RpcMethod<A extends Args = Args, O extends Args = Args> {
  name: string;
  args: A;
  /** false: the success reply carries no `result` (spind's void methods). */
  hasResult: boolean;
  run(params: Params<A, O>): unknown;
  /** `params: ""` is accepted as no params (the get_devices call of spind's design note, docs/spin-protocol.md §1.5). */
  emptyStringParams?: boolean;
  /** Arguments beyond spind's that a caller may add (e.g. `force`); not listed by list_rpc_methods. */
  optional?: O;
}

/** A method whose run is typed by its argument schemas (the dispatcher holds methods of any shape). */
// biome-ignore lint/suspicious/noExplicitAny: erases the params type once run is checked against the schemas.
export function method<A extends Args, O extends Args = Record<never, never>>(m: RpcMethod<A, O>): RpcMethod<any, any> {
  return m;
}

/** A method failure with spind's code (-1 unless stated). */
export class RpcError extends SpinError {}

const Envelope = z.object({ jsonrpc: z.literal('2.0') }).loose();

type Reply = Record<string, unknown>;

function errorReply(req: unknown, code: number, message: string): Reply {
  const r: Reply = { jsonrpc: '2.0' };
  if (isObject(req) && 'id' in req) r.id = validId(req.id) ? req.id : null;
  r.error = { code, message };
  return r;
}

/**
 * A JSON-RPC id: a string, a number or null (JSON-RPC 2.0 §4). Anything else is not echoed: an id nested
 * 100 000 arrays deep overflowed the stack when the reply was written (HTTP 500, no reply over MQTT).
 */
function validId(id: unknown): boolean {
  return id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
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
  private readonly methods = new Map<string, { m: RpcMethod; schema: z.ZodType; args: string[]; optional: string[] }>();

  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: methods of any params shape (see method()).
    methods: RpcMethod<any, any>[],
    private readonly opts: DispatchOptions = {},
  ) {
    for (const m of methods) {
      const shape: Record<string, z.ZodType> = { ...m.args };
      for (const [name, s] of Object.entries<ArgSchema>(m.optional ?? {})) shape[name] = s.optional();
      const schema = z.object(shape).strict();
      this.methods.set(m.name, { m, schema, args: Object.keys(m.args), optional: Object.keys(m.optional ?? {}) });
    }
  }

  /** list_rpc_methods: sorted by name, spind's field names. */
  describe(): unknown[] {
    return [...this.methods.values()]
      .map(({ m }) => ({
        'rpc-name': m.name,
        'rpc-args': Object.entries(m.args).map(([n, s]) => ({ 'rpc-arg-name': n, 'rpc-arg-type': ARG_TYPE.get(s) })),
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
    if (isObject(req) && 'id' in req && !validId(req.id))
      return errorReply(req, 1, "'id' must be a string, a number or null");
    if (!Envelope.safeParse(req).success) return errorReply(req, 1, 'Wrong JSON-RPC version, expected 2.0');
    const r = req as Record<string, unknown>;
    if (typeof r.method !== 'string') return errorReply(r, 2, "'method' object must be a string");
    const entry = this.methods.get(r.method);
    let params: unknown = r.params === undefined ? {} : r.params;
    if (entry?.m.emptyStringParams && params === '') params = {};
    if (!isObject(params)) return errorReply(r, 3, "'params' object must be a dict");
    if (!entry) return errorReply(r, -1, 'No such function registered');
    const { m, schema, args, optional } = entry;
    const names = Object.keys(params);
    const extra = names.filter((n) => optional.includes(n)).length;
    if (names.length - extra !== args.length) return errorReply(r, -1, 'Wrong number of arguments');
    if (names.some((n) => !args.includes(n) && !optional.includes(n)))
      return errorReply(r, -1, 'No such argument registered');
    const parsed = schema.safeParse(params);
    if (!parsed.success) return errorReply(r, -1, 'Wrong type of argument');
    let result: unknown;
    try {
      result = await m.run(parsed.data as Params<Args, Args>);
    } catch (err) {
      if (err instanceof SpinError) return errorReply(r, err.code, err.message);
      return errorReply(r, -1, err instanceof Error ? err.message : String(err));
    }
    if (!('id' in r)) return m.hasResult ? result : undefined;
    const reply: Reply = { jsonrpc: '2.0', id: r.id };
    if (m.hasResult) reply.result = result;
    return reply;
  }
}
