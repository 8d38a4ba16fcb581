/**
 * The push network a graph compiles to. Each node runs one graph node's
 * step and pushes what it outputs to its children: plain function calls,
 * no RxJS subscriber chain per record. Nodes are keyed by their whole
 * upstream, so flows whose graphs share a prefix share those nodes and each
 * record is evaluated there once. A source node subscribes to its kernel
 * source while it has children, and unsubscribes when the last one leaves.
 */
import { type Observable, Subject, Subscriber, type Subscription } from 'rxjs';
import { reportUnhandledError } from 'rxjs/internal/util/reportUnhandledError';
import { borrowers, readsWithin } from '../filters/lib/pure.js';
import type { Rec, StepFn, Stepper } from '../filters/registry.js';

export interface Sink {
  push(r: Rec): void;
  complete(): void;
  error(err: unknown): void;
  /**
   * Where push() hands each record, if the sink replaces that function as it changes (a fused node, see fuse.ts):
   * a caller with a call site of its own calls it directly and V8 can inline it there.
   */
  readonly run?: (r: Rec) => void;
}

/** Records in, out and dropped at one node of a running graph. */
export interface NodeStats {
  node: string;
  path: string;
  in: number;
  out: number;
  dropped: number;
}

export abstract class NetNode implements Sink {
  /** An array, replaced on change: iterating it per record allocates nothing. */
  protected kids: Sink[] = [];

  constructor(readonly stats: NodeStats) {}

  abstract push(r: Rec): void;

  get childCount(): number {
    return this.kids.length;
  }

  emit(r: Rec): void {
    this.stats.out++;
    const kids = this.kids;
    for (let i = 0; i < kids.length; i++) kids[i].push(r);
  }

  complete(): void {
    for (const c of this.kids) c.complete();
  }

  error(err: unknown): void {
    for (const c of this.kids) c.error(err);
  }

  /** Adds a child; returns its removal. Subclasses start work on the first child. */
  attach(child: Sink): () => void {
    this.kids = [...this.kids, child];
    return () => {
      this.kids = this.kids.filter((k) => k !== child);
    };
  }
}

export class StepNode extends NetNode {
  /** Where the step emits (fused code that calls `fn` itself passes it: see fuse.ts). */
  readonly out = (r: Rec) => this.emit(r);
  readonly fn: StepFn;
  private readonly stopper?: () => void;

  constructor(
    stats: NodeStats,
    private readonly stepper: Stepper,
  ) {
    super(stats);
    this.fn = stepper.push;
    this.stopper = stepper.start?.(this.out);
  }

  push(r: Rec): void {
    this.stats.in++;
    this.fn(r, this.out);
  }

  override complete(): void {
    this.stepper.complete?.(this.out);
    super.complete();
  }

  /** True when the step reads a record's values at or under `kept` only, and keeps nothing of it (pure.ts). */
  readsOnly(kept: readonly string[]): boolean {
    const reads = borrowers.get(this.stepper);
    return reads !== undefined && readsWithin(reads, kept);
  }

  /** Emits what the step holds (open windows) to its children; the input goes on. */
  flush(): void {
    this.stepper.flush?.(this.out);
  }

  dispose(): void {
    this.stopper?.();
  }
}

/** A filter given as an RxJS operator (windowed aggregates, user filters): records go in through a Subject. */
export class OperatorNode extends NetNode {
  private readonly input = new Subject<Rec>();
  private readonly sub: Subscription;

  constructor(stats: NodeStats, op: (src: Observable<Rec>) => Observable<Rec>) {
    super(stats);
    this.sub = op(this.input.asObservable()).subscribe({
      next: (r) => this.emit(r),
      error: (e) => super.error(e),
      complete: () => super.complete(),
    });
  }

  push(r: Rec): void {
    this.stats.in++;
    this.input.next(r);
  }

  override complete(): void {
    this.input.complete();
  }

  override error(err: unknown): void {
    this.input.error(err);
  }

  dispose(): void {
    this.sub.unsubscribe();
  }
}

/**
 * When one node captures: the readiness signals its kernel resources gave
 * (ReadyObserver), and the error that ended it. Signals and error belong to
 * one subscription: reset() starts the next.
 */
export class Readiness {
  private signals: Promise<void>[] = [];
  private failed!: Promise<never>;
  private fail!: (err: unknown) => void;

  constructor() {
    this.reset();
  }

  reset(): void {
    this.signals = [];
    this.failed = new Promise<never>((_, reject) => (this.fail = reject));
    this.failed.catch(() => {});
  }

  /** A signal: resolves once capturing, or rejects with why not. */
  add(capturing: Promise<void>): void {
    capturing.catch(() => {});
    this.signals.push(capturing);
  }

  /** Signals given so far. */
  get size(): number {
    return this.signals.length;
  }

  /** The subscription ended with an error (before or after it captured). */
  error(err: unknown): void {
    this.fail(err);
  }

  /** Resolves once every signal has; rejects with the first failure or the subscription's error. */
  wait(): Promise<void> {
    return Promise.race([Promise.all(this.signals).then(() => undefined), this.failed]);
  }
}

/** A kernel (or test) source: subscribed while anyone listens. */
export class SourceNode extends NetNode {
  private sub?: Subscription;
  /** Readiness of the current subscription (its source signals into it through the build context). */
  readonly readiness = new Readiness();
  /** What the source's subscriber calls per record: emit(), generated for this node's children (see fanOut). */
  deliver: (r: Rec) => void = () => {};

  constructor(
    stats: NodeStats,
    private readonly source: () => Observable<Rec>,
  ) {
    super(stats);
  }

  push(r: Rec): void {
    this.deliver(r);
  }

  override attach(child: Sink): () => void {
    const detach = super.attach(child);
    this.rewire();
    if (!this.sub) {
      this.readiness.reset();
      this.sub = this.source().subscribe(new SourceSubscriber(this));
    }
    return () => {
      detach();
      this.rewire();
      if (this.kids.length === 0) this.stop();
    };
  }

  /** A fan-out of its own for a few children (see fanOut); many go through emit()'s loop, the code stays small. */
  private rewire(): void {
    this.deliver = this.kids.length > INLINE_KIDS ? (r) => this.emit(r) : fanOut(this.stats, this.kids);
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}

/** Children called inline by generated code (a fan-out, a fused node's step); beyond that, a loop. */
export const INLINE_KIDS = 16;

/** Functions made by fanOut so far: each one's source text is told apart by its number. */
let fanOuts = 0;

/**
 * emit() for `kids` as a function of its own: `s.out++; k0.run(r); k1.push(r);`. Its text is unique, so V8 keeps
 * its own feedback for it: each call in it sees one target and is inlined (a fused node's run, and through it the
 * flow's steps), where emit(), shared by every node of the process, and a fused node's push() call whatever the
 * other flows run (a long-lived flow ran 0.64× a hand loop in a process that had run other flows, 0.74× so).
 * `kids` is never changed in place (attach and detach replace the array).
 */
function fanOut(stats: NodeStats, kids: Sink[]): (r: Rec) => void {
  // Each child in a variable of its own, read once: not an array element loaded per record.
  const names = kids.map((_k, i) => `k${i}`);
  const calls = kids.map((k, i) => `k${i}.${k.run ? 'run' : 'push'}(r);`);
  const src = `"use strict"; // fan-out ${++fanOuts}\nconst [${names.join(', ')}] = K;\nreturn (r) => { s.out++; ${calls.join(' ')} };`;
  return new Function('s', 'K', src)(stats, kids) as (r: Rec) => void;
}

/**
 * A source node's subscriber: each record goes straight to the node. A plain observer would be wrapped in a
 * SafeSubscriber and its ConsumerObserver, two more calls per record; what the node throws is reported as
 * that wrapper reports it (and the source goes on).
 */
class SourceSubscriber extends Subscriber<Rec> {
  constructor(private readonly node: SourceNode) {
    super();
  }

  protected override _next(r: Rec): void {
    try {
      this.node.deliver(r);
    } catch (err) {
      reportUnhandledError(err);
    }
  }

  protected override _error(err: unknown): void {
    try {
      this.node.readiness.error(err);
      this.node.error(err);
    } catch (thrown) {
      reportUnhandledError(thrown);
    } finally {
      this.unsubscribe();
    }
  }

  protected override _complete(): void {
    try {
      this.node.complete();
    } catch (thrown) {
      reportUnhandledError(thrown);
    } finally {
      this.unsubscribe();
    }
  }
}

/** Where forked branches join: completes when every branch has. */
export class MergeNode extends NetNode {
  private open: number;

  constructor(stats: NodeStats, branches: number) {
    super(stats);
    this.open = branches;
  }

  push(r: Rec): void {
    this.emit(r);
  }

  override complete(): void {
    if (--this.open === 0) super.complete();
  }
}
