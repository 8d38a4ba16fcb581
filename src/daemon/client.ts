/**
 * The client side of flowgrabd: connect(path) gives flow handles with the
 * same life and API as local ones. Every frame from the daemon is checked
 * against the protocol's schemas (protocol.ts) before it is used: a
 * malformed reply or event is a FlowgrabError (FG_ERR_PROTOCOL) on every
 * request and flow of the connection, which is then closed. populate() is local (and sync,
 * as locally); the graph goes to the daemon at instantiate(), which checks
 * it against the policy for the identity the kernel reports.
 */
import { createConnection, type Socket } from 'node:net';
import { type Observable, Subject } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import type { GraphBuilder } from '../filters/builder.js';
import { GraphError } from '../filters/errors.js';
import type { Rec } from '../filters/registry.js';
import type { GraphSpec } from '../filters/spec.js';
import type { PopulatedRecord } from '../filters/text-type.js';
import type { NodeStats } from '../flow/compile.js';
import { type FlowOptions, type FlowStats, type LossNotice, readerLossNotice } from '../flow/handle.js';
import { iterateRecords, ReaderLoss } from '../flow/iterate.js';
import { addToGraph, type PopulatedGraph } from '../flow/populate.js';
import { type FlowState, transition } from '../flow/states.js';
import { Fanout } from '../sources/fanout.js';
import type { DaemonStatus } from './host.js';
import {
  type ErrorBody,
  type Event,
  encodeFrame,
  FrameReader,
  issuesText,
  MAX_SERVER_FRAME,
  PROTOCOL_VERSION,
  parseServerFrame,
  RemoteStats,
  type ServerMessage,
} from './protocol.js';
import { type QueueRegistration, RemoteQueue } from './remote-queue.js';

export type { QueueNotice, QueueRegistration, RemotePacket, RemoteVerdict } from './remote-queue.js';
export { RemoteQueue } from './remote-queue.js';

/** The daemon's error as the FlowgrabError a local flow would have thrown. */
function toError(e: ErrorBody): FlowgrabError {
  if (e.issues?.length) return new GraphError(e.issues, e.message.split(':')[0] || 'graph');
  return new FlowgrabError(e.code, e.message, { op: 'daemon' });
}

/** Connects to flowgrabd's Unix socket (e.g. `/run/flowgrab/flowgrab.sock`); identity comes from the kernel. */
export function connect(path: string): Promise<RemoteFlowgrab> {
  return RemoteFlowgrab.connect(path);
}

/** A connection to flowgrabd: flow handles (and queue registrations) served by the daemon under its policy. Get one with `connect(path)`. */
export class RemoteFlowgrab {
  private readonly pending = new Map<
    number,
    { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  // biome-ignore lint/suspicious/noExplicitAny: flows of every record type.
  private readonly flows = new Map<number, RemoteFlowHandle<any>>();
  private readonly queues = new Map<number, RemoteQueue>();
  private nextId = 1;
  private readonly reader = new FrameReader(MAX_SERVER_FRAME);
  /** Compact records frames (compact.ts) are asked for, so taken; any other time one is a protocol error. */
  private compact = false;
  identity?: { uid: number; gid: number; user?: string };

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d) => {
      try {
        for (const f of this.reader.push(d)) this.onMessage(parseServerFrame(f, this.compact));
      } catch (err) {
        // The stream cannot be trusted past a bad frame: everything waiting on it fails, and it is closed.
        this.fail(err as FlowgrabError);
        sock.destroy();
      }
    });
    sock.on('close', () =>
      this.fail(new FlowgrabError('FG_ERR_CLOSED', 'connection to flowgrabd closed', { op: 'daemon' })),
    );
    sock.on('error', (err) =>
      this.fail(new FlowgrabError('FG_ERR_CLOSED', `flowgrabd: ${err.message}`, { op: 'daemon', cause: err })),
    );
  }

  /** Connects to flowgrabd at `path` and waits for its hello (see connect()). */
  static async connect(path: string): Promise<RemoteFlowgrab> {
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (err) =>
        reject(
          new FlowgrabError(
            'FG_ERR_CLOSED',
            `cannot reach flowgrabd at ${path}: ${(err as NodeJS.ErrnoException).code}`,
            { op: 'connect', cause: err },
          ),
        ),
      );
    });
    const c = new RemoteFlowgrab(sock);
    c.compact = true;
    let hello: Record<string, unknown>;
    try {
      hello = await c.request({ op: 'hello', records: 'compact' });
    } catch (err) {
      // A flowgrabd from before compact frames refuses the key: records come as JSON from it.
      if ((err as FlowgrabError).code !== 'FG_ERR_PROTOCOL' || !/records/.test((err as Error).message)) throw err;
      c.compact = false;
      hello = await c.request({ op: 'hello' });
    }
    c.compact = hello.records === 'compact';
    c.identity = hello.identity as RemoteFlowgrab['identity'];
    return c;
  }

  /** Internal: sends one request and resolves with the reply (rejects with the daemon's error). */
  request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (!this.sock.write(encodeFrame({ v: PROTOCOL_VERSION, id, ...body })) && this.sock.destroyed)
        reject(new FlowgrabError('FG_ERR_CLOSED', 'connection closed', { op: 'daemon' }));
    });
  }

  private onMessage(m: ServerMessage): void {
    if (m.event) {
      const e = m.event;
      if (e.ev === 'packets' || e.ev === 'queue-notice') this.queues.get(e.queue)?.onEvent(e);
      else this.flows.get(e.flow)?.onEvent(e);
      return;
    }
    const r = m.reply;
    const p = r.id === null ? undefined : this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id as number);
    if (r.ok) p.resolve(r as Record<string, unknown>);
    else p.reject(toError(r.error));
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const f of this.flows.values()) f.onDisconnect(err);
    for (const q of this.queues.values()) q.onDisconnect(err);
    this.queues.clear();
  }

  /** A new flow handle; `R` states its record type for text graphs (a built graph brings its own). */
  create<R extends object = Rec>(opts: FlowOptions = {}): RemoteFlowHandle<R> {
    return new RemoteFlowHandle<R>(this, opts, (id, h) => this.flows.set(id, h));
  }

  /**
   * Takes the packets of the daemon's NFQUEUE queue whose mark matches
   * `mark`/`mask` (default mask: all 32 bits). Each needs a verdict within
   * the registration's timeout, or gets the daemon's default verdict.
   */
  async queue(opts: { mark: number; mask?: number; timeoutMs?: number }): Promise<RemoteQueue> {
    const r = await this.request({ op: 'queue', ...opts });
    const q = new RemoteQueue(this, r as unknown as QueueRegistration, () => this.queues.delete(q.reg));
    this.queues.set(q.reg, q);
    return q;
  }

  /** The daemon's status report, as its `status` request returns it (what `flowgrab status` prints). */
  async status(): Promise<DaemonStatus> {
    return (await this.request({ op: 'status' })).status as DaemonStatus;
  }

  /** Closes every flow and queue of this connection, then the connection; idempotent. */
  async close(): Promise<void> {
    await Promise.allSettled([
      ...[...this.flows.values()].map((f) => f.close()),
      ...[...this.queues.values()].map((q) => q.close()),
    ]);
    this.sock.end();
    this.sock.destroy();
  }
}

/**
 * A record as the graph made it: a queued packet's `payload` (a Buffer) crosses the socket as JSON makes it,
 * `{type: 'Buffer', data: [...]}`, and is a Buffer again here, as its type says.
 */
function revive(r: Rec): Rec {
  const p = r.payload as { type?: unknown; data?: unknown } | undefined;
  if (p !== null && typeof p === 'object' && p.type === 'Buffer' && Array.isArray(p.data))
    return { ...r, payload: Buffer.from(p.data as number[]) };
  return r;
}

/** A flow run by flowgrabd; the same life and API as a local `FlowHandle<R>`. */
export class RemoteFlowHandle<R extends object = Rec> {
  private st: FlowState = 'created';
  /** What populate() was given (text, or a spec), and after instantiate the spec as it runs. */
  private readonly populated: PopulatedGraph = { text: [] };
  private id?: number;
  /** A Fanout, not a Subject: Subject.next allocates per record (fanout.ts). */
  private readonly out = new Fanout<Rec>();
  private readonly lost = new Subject<LossNotice>();
  private received = 0;
  /**
   * Records the reader lost, as lost$ reported them (the daemon's notices, and the local `for await` reader's,
   * a notice at most once a second): its total is the one count stats() shows as dropped.
   */
  private readonly readerLoss = new ReaderLoss((count) => this.lost.next(readerLossNotice(count, this.name)));
  private nodes: NodeStats[] = [];
  private missed = 0;
  private highWater = 0;
  private remoteGraph = '';
  /** Why the daemon closed this flow, when it did (e.g. a policy reload denied it). */
  closedReason?: string;
  readonly records$ = this.out.asObservable() as Observable<R>;
  readonly lost$ = this.lost.asObservable();

  constructor(
    private readonly c: RemoteFlowgrab,
    private readonly opts: FlowOptions,
    // biome-ignore lint/suspicious/noExplicitAny: the connection routes events to flows of every record type.
    private readonly register: (id: number, h: RemoteFlowHandle<any>) => void,
  ) {}

  get state(): FlowState {
    return this.st;
  }

  get name(): string {
    return this.opts.name ?? `remote-${this.id ?? '?'}`;
  }

  get graph(): string {
    return this.remoteGraph || this.populated.text.join('\n');
  }

  /** As `FlowHandle.populate`: text, a GraphSpec, or a built graph (whose record type the handle takes on). */
  populate<B extends object>(graph: GraphBuilder<B>): RemoteFlowHandle<B>;
  /** Graph text: literal text is typed by its nodes (`GraphTextRecord`); `populate<R>(text)` states the type. */
  populate<T extends object = never, S extends string = string>(
    graph: S,
  ): RemoteFlowHandle<[T] extends [never] ? PopulatedRecord<R, S> : T>;
  /** A GraphSpec (or text whose type is a union): the handle keeps its record type. */
  populate(graph: string | GraphSpec): this;
  populate(input: string | GraphSpec | GraphBuilder<object>): this {
    transition(this.st, 'populate');
    addToGraph(this.populated, input);
    this.st = 'populated';
    return this;
  }

  /** As FlowHandle.instantiate(): the daemon parses, authorizes under your policy, checks and builds the graph. */
  async instantiate(): Promise<void> {
    transition(this.st, 'instantiate');
    const created = await this.c.request({
      op: 'create',
      name: this.opts.name,
      bufferRecords: this.opts.bufferRecords,
      overflow: this.opts.overflow,
    });
    this.id = created.flow as number;
    this.register(this.id, this);
    await this.c.request({
      op: 'populate',
      flow: this.id,
      graph: this.populated.spec ?? this.populated.text.join('\n'),
    });
    try {
      const r = await this.c.request({ op: 'instantiate', flow: this.id });
      this.remoteGraph = String(r.graph ?? '');
      this.takeStats(r.stats);
    } catch (err) {
      // Leave the daemon with nothing half-made: the local handle stays populated, as a local one would.
      await this.c.request({ op: 'close', flow: this.id }).catch(() => {});
      this.id = undefined;
      throw err;
    }
    if ((this.st as FlowState) === 'closed') return;
    this.st = 'instantiated';
  }

  /** As a local handle's: resolves once the daemon's sources capture; on failure the flow stays as it was. */
  async activate(): Promise<void> {
    const next = transition(this.st, 'activate');
    this.takeStats((await this.c.request({ op: 'activate', flow: this.id })).stats);
    if (this.st !== 'closed') this.st = next;
  }

  /** As FlowHandle.pause(). */
  async pause(): Promise<void> {
    this.st = transition(this.st, 'pause');
    this.takeStats((await this.c.request({ op: 'pause', flow: this.id })).stats);
  }

  /** As FlowHandle.close(): the daemon releases the flow; records$ and lost$ complete. Idempotent. */
  async close(): Promise<void> {
    if (this.st === 'closed') return;
    this.st = 'closed';
    if (this.id !== undefined) await this.c.request({ op: 'close', flow: this.id }).catch(() => {});
    this.out.complete();
    this.readerLoss.flush();
    this.lost.complete();
  }

  /**
   * As a local handle's: the graph's node counts and `missed` as the daemon
   * last sent them (with records, at most every 100 ms, and in every reply);
   * `dropped` is what lost$ has reported lost for this reader (the daemon's
   * buffer and the records it could not send), `delivered` what arrived.
   */
  stats(): FlowStats {
    return {
      state: this.st,
      nodes: this.nodes.map((n) => ({ ...n })),
      buffer: {
        capacity: this.opts.bufferRecords ?? 10_000,
        buffered: 0,
        highWater: this.highWater,
        dropped: this.readerLoss.total,
        delivered: this.received,
      },
      missed: this.missed,
    };
  }

  /** The daemon's own stats of this flow, now (and stats() is brought up to date with them). */
  async remoteStats(): Promise<RemoteStats> {
    const r = await this.c.request({ op: 'stats', flow: this.id });
    return this.takeStats(r.stats) as RemoteStats;
  }

  /** A reply's stats, checked like any frame: a malformed one is a protocol error, not silently ignored. */
  private takeStats(raw: unknown): RemoteStats | undefined {
    if (raw === undefined) return undefined;
    const r = RemoteStats.safeParse(raw);
    if (!r.success)
      throw new FlowgrabError('FG_ERR_PROTOCOL', `flowgrabd sent malformed stats: ${issuesText(r.error)}`, {
        op: 'daemon',
      });
    this.nodes = r.data.nodes;
    this.missed = r.data.missed;
    this.highWater = r.data.buffer.highWater;
    return r.data;
  }

  /** Pull records one at a time, as from a local handle: a reader that falls behind loses the oldest (in lost$). */
  [Symbol.asyncIterator](): AsyncGenerator<R> {
    return iterateRecords(this.records$, this.opts.bufferRecords ?? 10_000, (n) => this.readerLoss.add(n));
  }

  /** Internal: called by the connection with this flow's events. */
  onEvent(e: Event): void {
    if (e.ev === 'records') {
      this.received += e.records.length;
      if (e.nodes) this.nodes = e.nodes;
      for (const r of e.records) this.out.next(revive(r as Rec));
    } else if (e.ev === 'lost') {
      if (e.notice.where === 'reader') this.readerLoss.tally(e.notice.count ?? 0);
      this.lost.next({ ...(e.notice as LossNotice), flow: this.name });
    } else if (e.ev === 'end') {
      if (e.error) this.out.error(toError(e.error));
      else this.out.complete();
    } else if (e.ev === 'closed') {
      this.closedReason = e.reason;
      this.st = 'closed';
      this.out.error(new FlowgrabError('FG_ERR_DENIED', `flowgrabd closed the flow: ${e.reason}`, { op: 'daemon' }));
      this.readerLoss.flush();
      this.lost.complete();
    }
  }

  /** Internal: called by the connection when it is lost; errors the streams with `err`. */
  onDisconnect(err: Error): void {
    if (this.st === 'closed') return;
    this.st = 'closed';
    this.out.error(err);
    this.readerLoss.flush();
    this.lost.complete();
  }
}
