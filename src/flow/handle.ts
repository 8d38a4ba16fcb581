/**
 * FlowHandle: create → populate → instantiate → activate ⇄ pause → close
 * (after FFPF). instantiate parses, validates, authorizes and allocates
 * (subscribes the pipeline: sockets and rules exist from then on) but
 * delivers nothing until activate; records arriving while not active are
 * counted as missed. close() is idempotent and releases everything.
 */
import { merge, type Observable, Subject, type Subscription } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import type { GraphBuilder } from '../filters/builder.js';
import { GraphError, type GraphIssue } from '../filters/errors.js';
import { parseGraph } from '../filters/parser.js';
import { printGraph } from '../filters/print.js';
import type { Rec } from '../filters/registry.js';
import { GraphSpec } from '../filters/spec.js';
import type { PopulatedRecord } from '../filters/text-type.js';
import type { SourceNotice } from '../sources/notice.js';
import { FlowBuffer, type OverflowPolicy } from './buffer.js';
import type { Compiler, NodeStats, Stage } from './compile.js';
import { iterateRecords, ReaderLoss } from './iterate.js';
import { addToGraph, type PopulatedGraph } from './populate.js';
import { type FlowOp, type FlowState, transition } from './states.js';

/** A flow's name, buffer size and overflow policy. */
export interface FlowOptions {
  name?: string;
  /** Records buffered between the pipeline and the subscribers (default 10 000). */
  bufferRecords?: number;
  overflow?: OverflowPolicy;
  /** How long activate() waits for the sources to capture (default READY_TIMEOUT_MS; local flows only). */
  readyTimeoutMs?: number;
}

/** A loss notice of a flow: a source notice with the flow named. */
export interface LossNotice extends SourceNotice {
  flow: string;
}

/** A flow's counters: per node, its buffer, and what it missed while not active. */
export interface FlowStats {
  state: FlowState;
  nodes: NodeStats[];
  buffer: { capacity: number; buffered: number; highWater: number; dropped: number; delivered: number };
  /** Records that reached the flow while it was not active. */
  missed: number;
}

/** What an Authorizer learns about the flow besides its graph. */
export interface AuthorizeInput {
  /** Flows of this Flowgrab that are open now (this one excluded). */
  openFlows: number;
  bufferRecords: number;
}

/** Issues deny the graph; a returned graph (e.g. with the policy's scope inserted) is what runs. */
export type Authorizer = (
  g: GraphSpec,
  ctx: AuthorizeInput,
) =>
  | GraphIssue[]
  | { issues: GraphIssue[]; graph?: GraphSpec }
  | Promise<GraphIssue[] | { issues: GraphIssue[]; graph?: GraphSpec }>;

/** How long activate() waits by default for the sources to capture (binding, installing rules). */
export const READY_TIMEOUT_MS = 30_000;

let nextId = 1;

/** A local flow handle; `R` is the type of its records (see `GraphBuilder` and `Flowgrab.create<R>()`). */
export class FlowHandle<R extends object = Rec> {
  readonly id = nextId++;
  readonly name: string;
  private st: FlowState = 'created';
  /** What populate() was given (text, or a spec), and after instantiate the spec as it runs. */
  private readonly populated: PopulatedGraph = { text: [] };
  private asked?: GraphSpec;
  private printed?: { spec: GraphSpec; text: string };
  private stage?: Stage;
  private detach?: () => void;
  private noticeSub?: Subscription;
  private readonly buffer: FlowBuffer<Rec>;
  private readonly lost = new Subject<LossNotice>();
  private readonly notices = new Subject<SourceNotice>();
  private missed = 0;
  /** Every record this flow's reader lost (buffer and iterator): what lost$ reports and stats() shows. */
  private readonly readerLoss = new ReaderLoss((count) => this.lost.next(readerLossNotice(count, this.name)));
  private readonly readyTimeoutMs: number;

  /** Records, once active. Errors from the kernel sources end it with that error. */
  readonly records$: Observable<R>;
  /** Loss notices: kernel overruns, decode failures, and this flow's own buffer drops. */
  readonly lost$: Observable<LossNotice>;
  /** Every notice of the flow's sources (loss, resync, warnings). */
  readonly notices$: Observable<SourceNotice>;

  /** @internal Handles are made by `Flowgrab.create()`. */
  constructor(
    private readonly compiler: Compiler,
    private readonly authorize: Authorizer,
    opts: FlowOptions,
    // biome-ignore lint/suspicious/noExplicitAny: the owner tracks flows of every record type.
    private readonly onClose: (f: FlowHandle<any>) => void,
    private readonly openFlows: () => number = () => 0,
  ) {
    this.name = opts.name ?? `flow-${this.id}`;
    const capacity = opts.bufferRecords ?? 10_000;
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'bufferRecords must be a whole number ≥ 1');
    this.readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    if (!(this.readyTimeoutMs > 0))
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'readyTimeoutMs must be a number of milliseconds > 0');
    this.buffer = new FlowBuffer<Rec>(capacity, opts.overflow ?? 'drop-oldest', (n) => this.readerLoss.add(n));
    this.buffer.hold();
    // The graph decides the records' shape; R is what the caller (or the builder) says it is.
    this.records$ = this.buffer.records$ as Observable<R>;
    this.lost$ = this.lost.asObservable();
    this.notices$ = this.notices.asObservable();
  }

  get state(): FlowState {
    return this.st;
  }

  /** The graph as the user gave it, before the policy added anything (once instantiated). */
  get requested(): GraphSpec | undefined {
    return this.asked;
  }

  /** The graph as text, once populated from text or a spec (after instantiate: as it runs). */
  get graph(): string {
    const spec = this.populated.spec;
    if (!spec) return this.populated.text.join('\n');
    // Printed once per spec: the daemon's status and policy rechecks ask for it again and again.
    if (this.printed?.spec !== spec) this.printed = { spec, text: printGraph(spec) };
    return this.printed.text;
  }

  private go(op: FlowOp): void {
    this.st = transition(this.st, op);
  }

  /**
   * Adds graph text (later calls extend it, e.g. with "-> count(…)"), or sets
   * a GraphSpec or a built graph (`graph.source(…)…`, which text may extend
   * too), whose record type the returned handle takes on. Literal text is typed by its nodes (see
   * `GraphTextRecord`); `populate<R>(text)` states the type instead. Use the handle it returns: a reference
   * taken before keeps the type it had, though the records are the new graph's.
   */
  populate<B extends object>(graph: GraphBuilder<B>): FlowHandle<B>;
  /** Graph text: literal text is typed by its nodes (`GraphTextRecord`); `populate<R>(text)` states the type. */
  populate<T extends object = never, S extends string = string>(
    graph: S,
  ): FlowHandle<[T] extends [never] ? PopulatedRecord<R, S> : T>;
  /** A GraphSpec (or text whose type is a union): the handle keeps its record type. */
  populate(graph: string | GraphSpec): this;
  populate(input: string | GraphSpec | GraphBuilder<object>): this {
    transition(this.st, 'populate');
    addToGraph(this.populated, input);
    this.go('populate');
    return this;
  }

  /** Parses, authorizes, checks and builds the graph; kernel resources exist from here, records wait for activate(). Rejects with one GraphError listing every issue. */
  async instantiate(): Promise<void> {
    transition(this.st, 'instantiate');
    const asked = this.parse();
    // Authorization first: a graph the caller may not run is never even checked (checking can touch files).
    const res = await this.authorize(asked, { openFlows: this.openFlows(), bufferRecords: this.buffer.capacity });
    const { issues: denied, graph } = Array.isArray(res) ? { issues: res, graph: undefined } : res;
    if (denied.length) throw new GraphError(denied, 'not authorized');
    const { issues } = this.compiler.check(asked);
    if (issues.length) throw new GraphError(issues);
    if (this.st === 'closed') return; // closed while we were authorizing
    this.asked = asked;
    const spec = graph ?? asked;
    if (graph) {
      const again = this.compiler.check(spec).issues;
      if (again.length) throw new GraphError(again, 'graph after policy');
    }
    this.populated.spec = spec;
    const stage = this.compiler.build(spec);
    this.stage = stage;
    this.noticeSub = merge(...stage.sources.map((s) => s.notices)).subscribe((n) => {
      this.notices.next(n);
      if (n.kind === 'loss') this.lost.next({ ...n, flow: this.name });
    });
    this.detach = stage.node!.attach({
      // Before the first activate the records are held, not missed: a dump or a replay that ends between
      // instantiate and activate (a daemon round trip) is delivered whole at activate. Paused: missed.
      // A source that emits as it is subscribed (of(), from([...]) in a registered source) does so here, before
      // the state says instantiated: held too.
      push: (r) =>
        this.st === 'active' || this.st === 'instantiated' || this.st === 'populated'
          ? this.buffer.push(r)
          : this.missed++,
      error: (err) => this.buffer.out.error(err),
      complete: () => this.buffer.end(),
    });
    this.go('instantiate');
  }

  private parse(): GraphSpec {
    const raw = this.populated.spec ?? parseGraph(this.populated.text.join('\n'));
    const r = GraphSpec.safeParse(raw);
    if (!r.success) {
      throw new GraphError(
        r.error.issues.map((i) => ({
          code: 'bad_spec',
          path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
          message: `graph spec: ${i.path.join('.')}: ${i.message}`,
        })),
      );
    }
    return r.data;
  }

  /**
   * Delivers records from now on. Resolves only once every source captures
   * (groups joined, NFLOG group or queue bound, firewall rules installed):
   * what happens after that is seen. A source that fails rejects it with its
   * error, one still not capturing after `readyTimeoutMs` with
   * FG_ERR_TIMEOUT; either way the flow stays as it was.
   */
  async activate(): Promise<void> {
    transition(this.st, 'activate');
    await this.capturing();
    this.go('activate');
    this.buffer.release();
  }

  /** Waits, bounded, until every node of the graph that captures from the kernel does. */
  private async capturing(): Promise<void> {
    const ready = this.stage?.ready ?? [];
    if (ready.length === 0) return;
    const pending = new Set(ready.map((r) => r.what));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const which = [...pending].join(', ');
        const msg = `flow ${this.name}: not capturing after ${this.readyTimeoutMs} ms (waiting for ${which})`;
        reject(new FlowgrabError('FG_ERR_TIMEOUT', msg, { op: 'activate' }));
      }, this.readyTimeoutMs);
    });
    try {
      await Promise.race([Promise.all(ready.map((r) => r.wait().then(() => pending.delete(r.what)))), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Keeps the pipeline; records arriving meanwhile are counted in stats().missed. */
  async pause(): Promise<void> {
    this.go('pause');
  }

  /**
   * Releases the pipeline, its kernel resources (when no other flow shares them) and the buffer. Idempotent.
   * An active flow first delivers what it holds: its buffer and the open windows of stages no other flow shares.
   */
  async close(): Promise<void> {
    if (this.st === 'closed') return;
    if (this.st === 'active' && this.stage) {
      // The open windows of this flow's own stages become records, delivered before the end.
      this.compiler.flushOwn(this.stage.keys);
      this.buffer.deliverNow();
    }
    this.go('close');
    this.detach?.();
    this.noticeSub?.unsubscribe();
    if (this.stage) this.compiler.release(this.stage.keys);
    this.readerLoss.flush();
    this.buffer.clear();
    this.buffer.out.complete();
    this.lost.complete();
    this.notices.complete();
    this.onClose(this);
  }

  /** Counters: per node in/out/dropped, the buffer, missed records. */
  stats(): FlowStats {
    return {
      state: this.st,
      nodes: this.stage ? this.stage.nodes.map((n) => ({ ...n })) : [],
      buffer: { capacity: this.buffer.capacity, ...this.buffer.stats, dropped: this.readerLoss.total },
      missed: this.missed,
    };
  }

  /** Pull records one at a time; a reader that falls behind loses records (counted in lost$), never slows others. */
  [Symbol.asyncIterator](): AsyncGenerator<R> {
    return iterateRecords(this.records$, this.buffer.capacity, (n) => this.readerLoss.add(n));
  }
}

/** The notice of `count` records a reader of flow `flow` lost (sent at most once a second by either handle). */
export function readerLossNotice(count: number, flow: string): LossNotice {
  return {
    kind: 'loss',
    where: 'reader',
    count,
    source: 'flow',
    message: `${count} records dropped: the reader of flow ${flow} fell behind`,
    ts: Date.now(),
    flow,
  };
}
