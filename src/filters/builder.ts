/**
 * Building graphs in code; produces the same GraphSpec as the text form, and
 * carries the type of the records the graph outputs:
 *
 *   graph.source('conntrack', { events: ['new'] })   // GraphBuilder<ConntrackRecord>
 *     .match('proto == tcp')                          // GraphBuilder<ConntrackRecord>
 *     .count({ by: 'orig.src', every: '10s' })        // GraphBuilder<CountRecord<{ orig: { src: string } }>>
 *
 * `flow.populate(builder)` takes it as it is, and the flow's `records$` has that type.
 */
import type { z } from 'zod';
import type { NeighRecord } from '../sources/arp/record.js';
import type { ConntrackRecord } from '../sources/conntrack/record.js';
import type { DnsRecord } from '../sources/dns/record.js';
import type { PacketRecord } from '../sources/nfqueue/record.js';
import type { SUM_FIELDS } from './lib/aggregate.js';
import { printGraph } from './print.js';
import type { Rec } from './registry.js';
import type { ArpParams, ConntrackParams, DnsParams, NfqueueParams } from './sources.js';
import { type ExprSpec, type GraphSpec, node, type Value } from './spec.js';

/** The record each built-in source emits, by source name. */
export interface SourceRecords {
  conntrack: ConntrackRecord;
  dns: DnsRecord;
  arp: NeighRecord;
  nfqueue: PacketRecord;
  /** A recording holds whatever its graph wrote: state the type with `graph.source<'replay', MyRec>` or a cast-free `populate<R>`. */
  replay: Rec;
}

/** Any record a built-in source emits (what a text graph's records can be, before filters). */
export type AnySourceRecord = SourceRecords[keyof SourceRecords];

type Prev = [never, 0, 1, 2, 3, 4];
type Leaf = string | number | boolean | bigint | null | undefined | readonly unknown[] | Uint8Array;

/** Dotted paths into a record's nested objects (to four levels), e.g. `'orig.src'`; for a union, any member's. */
export type FieldPaths<R, D extends number = 4> = [D] extends [never]
  ? never
  : R extends Leaf
    ? never
    : R extends unknown
      ? {
          [K in keyof R & string]-?: NonNullable<R[K]> extends Leaf
            ? K
            : K | `${K}.${FieldPaths<NonNullable<R[K]>, Prev[D]>}`;
        }[keyof R & string]
      : never;

/** The value at a dotted path. */
export type PathValue<R, P extends string> = P extends `${infer K}.${infer Rest}`
  ? K extends keyof R
    ? PathValue<NonNullable<R[K]>, Rest>
    : never
  : P extends keyof R
    ? R[P]
    : never;

/** True when key K may be missing from R (optional, or allowed to be undefined). */
type MayLack<R, K extends keyof R> = object extends Pick<R, K> ? true : undefined extends R[K] ? true : false;

/** True when the value at path P may be missing from R: some key along the path may be. */
type PathMayLack<R, P extends string> = P extends `${infer K}.${infer Rest}`
  ? K extends keyof R
    ? MayLack<R, K> extends true
      ? true
      : PathMayLack<NonNullable<R[K]>, Rest>
    : true
  : P extends keyof R
    ? MayLack<R, P>
    : true;

/** PickPath of one record type, the whole nesting optional when the value may be missing (`O`). */
type PickOne<R, P extends string, O extends boolean> = P extends `${infer K}.${infer Rest}`
  ? K extends keyof R
    ? O extends true
      ? { [Q in K]?: PickOne<NonNullable<R[K]>, Rest, O> }
      : { [Q in K]: PickOne<NonNullable<R[K]>, Rest, O> }
    : object
  : P extends keyof R
    ? O extends true
      ? { [Q in P]?: NonNullable<R[P]> }
      : { [Q in P]: R[P] }
    : object;

/**
 * The part of R a path keeps, in its nesting: `PickPath<R, 'orig.src'>` is `{ orig: { src: string } }`. A value
 * that may be missing (`orig.sport`: ICMP has none) is optional with every level above it, as a projection leaves
 * the path out then; for a union, each member's part (`object` for one without the path).
 */
export type PickPath<R, P extends string> = R extends unknown ? PickOne<R, P, PathMayLack<R, P>> : never;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The paths of one record type kept together (distributes over P only). */
type PickAll<R, P extends string> = P extends string ? PickOne<R, P, PathMayLack<R, P>> : never;

/** Several paths kept together (project's output, an aggregate's key); for a union of records, each member's. */
export type PickPaths<R, P extends string> = string extends keyof R
  ? Rec
  : [P] extends [never]
    ? object
    : R extends unknown
      ? Simplify<UnionToIntersection<PickAll<R, P>>>
      : never;

/** What `project(paths…)` outputs: the named paths in their nesting, plus `type` and `ts` when the record has them. */
export type Projected<R, P extends string> = string extends keyof R
  ? Rec
  : PickPaths<R, P> & Pick<R, Extract<keyof R, 'type' | 'ts'>>;

/** One window of `count(by=…)`: the key at its paths, and the count. */
export type CountRecord<K = object> = K & { type: 'count'; ts: number; start: number; end: number; count: number };
/** One window of `sum(field=…, by=…)`. */
export type SumRecord<K = object> = K & {
  type: 'sum';
  ts: number;
  start: number;
  end: number;
  sum: number;
  count: number;
};
/** One window of `top(by=…, n=…)`: the n largest keys, largest first. */
export interface TopRecord<K = object> {
  type: 'top';
  ts: number;
  start: number;
  end: number;
  items: (K & { count: number; sum?: number })[];
}

/** The record type a builder's graph outputs. */
export type RecordOf<B> = B extends GraphBuilder<infer R> ? R : never;

/** A built-in source's graph parameters, as its schema takes them (a misspelt key does not compile). */
interface SourceParamTypes {
  conntrack: z.input<typeof ConntrackParams>;
  dns: z.input<typeof DnsParams>;
  arp: z.input<typeof ArpParams>;
  nfqueue: z.input<typeof NfqueueParams>;
}
/** The parameters of source N: typed for the built-in ones, any node parameters for the others. */
type SourceParams<N extends string> = N extends keyof SourceParamTypes ? SourceParamTypes[N] : Params;
/** Node parameters; an `undefined` value is left out (handy for optional settings). */
type Params = Record<string, Value | undefined>;
/** Paths of R; any string for records of unknown shape (text graphs, `to()`). */
type Paths<R> = string extends keyof R ? string : FieldPaths<R> & string;
// biome-ignore lint/suspicious/noExplicitAny: a builder of any record type (GraphBuilder is invariant in R).
type AnyBuilder = GraphBuilder<any>;
/** A grouping key: a path of R, not one of the aggregates' own output fields (the check refuses those). */
type KeyPath<R> = Exclude<Paths<R>, (typeof SUM_FIELDS)[number]>;
type ByParam<R> = KeyPath<R> | readonly KeyPath<R>[];
/** A window length: a number of ms, or a duration like `'10s'`, `'500ms'`, `'1h'`. */
type Every = number | `${bigint}${'ms' | 's' | 'm' | 'h'}`;
/** Paths of R whose value is a number (what sum() and top's sum add up); any string for records of unknown shape. */
type NumberPaths<R> = string extends keyof R
  ? string
  : { [P in FieldPaths<R> & string]: NonNullable<PathValue<R, P>> extends number ? P : never }[FieldPaths<R> & string];
type ByPaths<B> = B extends readonly (infer P)[] ? P & string : B & string;

/** A graph being built; `R` is the type of the records it outputs. */
export class GraphBuilder<R extends object = Rec> {
  /** Use `graph.source()`, `graph.filter()` or `graph.union()`. */
  constructor(private readonly steps: ExprSpec[]) {}

  /** Appends any filter: `-> name(args…, params…)`. Its output type is unknown unless you state it: `to<MyRec>(…)`. */
  to<Out extends object = Rec>(name: string, params: Params = {}, ...args: Value[]): GraphBuilder<Out> {
    return new GraphBuilder<Out>([...this.steps, node(name, args, clean(params))]);
  }

  /** `-> match(expr)`: keeps the records the expression accepts; their type does not change. */
  match(expr: string): GraphBuilder<R> {
    return this.to<R>('match', {}, expr);
  }

  /** `-> project(paths…)`: keeps the named paths in their nesting, plus `type` and `ts`. */
  project<P extends Paths<R>>(...paths: P[]): GraphBuilder<Projected<R, P>> {
    return this.to<Projected<R, P>>('project', {}, ...paths);
  }

  /** `-> count(by=…, every=…)`: one record per key per window. */
  count<B extends ByParam<R>>(p: {
    by: B;
    every: Every;
    lateness?: Every;
  }): GraphBuilder<CountRecord<PickPaths<R, ByPaths<B>>>>;
  count(p: { every: Every; lateness?: Every }): GraphBuilder<CountRecord>;
  count(p: { by?: ByParam<R>; every: Every; lateness?: Every }): AnyBuilder {
    return this.to('count', clean(p));
  }

  /** `-> sum(field=…, by=…, every=…)`. */
  sum<B extends ByParam<R>>(p: {
    field: NumberPaths<R>;
    by: B;
    every: Every;
    lateness?: Every;
  }): GraphBuilder<SumRecord<PickPaths<R, ByPaths<B>>>>;
  sum(p: { field: NumberPaths<R>; every: Every; lateness?: Every }): GraphBuilder<SumRecord>;
  sum(p: { field: NumberPaths<R>; by?: ByParam<R>; every: Every; lateness?: Every }): AnyBuilder {
    return this.to('sum', clean(p));
  }

  /** `-> top(by=…, n=…, every=…[, field=…])`. */
  top<B extends ByParam<R>>(p: {
    by: B;
    n?: number;
    every: Every;
    lateness?: Every;
    field?: NumberPaths<R>;
  }): GraphBuilder<TopRecord<PickPaths<R, ByPaths<B>>>> {
    return this.to('top', clean(p));
  }

  /** Appends a fork: every branch gets the same input; their outputs merge. */
  fork<B extends AnyBuilder[]>(...branches: B): GraphBuilder<RecordOf<B[number]>> {
    return new GraphBuilder([...this.steps, { type: 'fork', branches: branches.map((b) => b.expr()) }]);
  }

  /** The graph as an expression (throws for an empty builder). */
  expr(): ExprSpec {
    if (this.steps.length === 0) throw new Error('an empty graph');
    return this.steps.length === 1 ? this.steps[0] : { type: 'pipe', steps: this.steps };
  }

  /** The graph as a GraphSpec, the same as parsing its text form. */
  toSpec(): GraphSpec {
    return { version: 1, root: this.expr() };
  }

  /** The graph in the text language. */
  toString(): string {
    return printGraph(this.toSpec());
  }
}

function clean(p: Record<string, unknown>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = v as Value;
  return out;
}

/** Starting points for building graphs in code. */
export const graph = {
  /** A pipeline starting at a source; a built-in source gives its record type. */
  source: <N extends string, R extends object = N extends keyof SourceRecords ? SourceRecords[N] : Rec>(
    name: N,
    params?: SourceParams<N>,
    ...args: Value[]
  ): GraphBuilder<R> => new GraphBuilder<R>([node(name, args, clean((params ?? {}) as Params))]),
  /** A branch for fork(): starts with a filter. `I` is the type of the records it receives. */
  filter: <I extends object = Rec, O extends object = I>(name: string, params: Params = {}, ...args: Value[]) =>
    new GraphBuilder<O>([node(name, args, clean(params))]),
  /** Several pipelines side by side (several sources): their outputs merge. */
  union: <B extends AnyBuilder[]>(...parts: B): GraphBuilder<RecordOf<B[number]>> =>
    new GraphBuilder([{ type: 'fork', branches: parts.map((p) => p.expr()) }]),
};
