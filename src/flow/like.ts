/**
 * What local and remote flow handles have in common: code written against
 * `FlowHandleLike<R>` / `FlowgrabLike` runs in-process (`new Flowgrab()`) or
 * through flowgrabd (`await connect(path)`) unchanged.
 */
import type { Observable } from 'rxjs';
import type { GraphBuilder } from '../filters/builder.js';
import type { Rec } from '../filters/registry.js';
import type { GraphSpec } from '../filters/spec.js';
import type { PopulatedRecord } from '../filters/text-type.js';
import type { FlowOptions, FlowStats, LossNotice } from './handle.js';
import type { FlowState } from './states.js';

/** A flow handle, local or remote; `R` is the type of its records. */
export interface FlowHandleLike<R extends object = Rec> {
  readonly name: string;
  /** created → populated → instantiated → active ⇄ paused → closed. */
  readonly state: FlowState;
  /** The graph as text. */
  readonly graph: string;
  /** Records, once active. */
  readonly records$: Observable<R>;
  /** Loss: kernel overruns, decode failures, buffer drops. */
  readonly lost$: Observable<LossNotice>;
  /** Text (extends earlier text), a GraphSpec, or a built graph (the handle takes on its record type). */
  populate<B extends object>(graph: GraphBuilder<B>): FlowHandleLike<B>;
  /** Text: literal text is typed by its nodes (`GraphTextRecord`); `populate<R>(text)` states the type. */
  populate<T extends object = never, S extends string = string>(
    graph: S,
  ): FlowHandleLike<[T] extends [never] ? PopulatedRecord<R, S> : T>;
  /** A GraphSpec (or text whose type is a union): the handle keeps its record type. */
  populate(graph: string | GraphSpec): FlowHandleLike<R>;
  /** Parse, validate, authorize and open the kernel sockets; nothing is delivered yet. */
  instantiate(): Promise<void>;
  /** Records flow. */
  activate(): Promise<void>;
  /** Keeps the sockets; what arrives meanwhile is counted as missed. */
  pause(): Promise<void>;
  /** Releases everything; idempotent. */
  close(): Promise<void>;
  /** `for await (const r of flow)`: records one at a time; a reader that falls behind loses the oldest (in lost$). */
  [Symbol.asyncIterator](): AsyncGenerator<R>;
  /** Counters of the flow. */
  stats(): FlowStats;
}

/** A factory of flow handles, local (`Flowgrab`) or remote (`RemoteFlowgrab`). */
export interface FlowgrabLike {
  /** A new flow handle; `R` states its record type for text graphs. */
  create<R extends object = Rec>(opts?: FlowOptions): FlowHandleLike<R>;
  /** Closes every flow this factory made (and, remotely, the connection). */
  close(): Promise<void>;
}

/** Compile-time proof that both implementations fit the interfaces (no runtime cost). */
export type Implements<T extends U, U> = T;
