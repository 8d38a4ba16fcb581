/**
 * The public registry of sources and filters: each with a zod parameter
 * schema, the fields its records have, and a factory. Library users add
 * their own with registerFilter() / registerSource().
 */
import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { z } from 'zod';
import type { DnsCache } from '../sources/dns/cache.js';
import type { SourceNotice } from '../sources/notice.js';
import type { GraphIssue } from './errors.js';
import type { FieldCatalog } from './fields.js';
import type { SpecPath, Value } from './spec.js';

export type Rec = Record<string, unknown>;

export interface BuildContext {
  /** Path of this node in the graph spec, for messages. */
  path: SpecPath;
  /** Fields of the records coming in (filters) — empty for sources. */
  input: FieldCatalog;
  /** Parameters of the source this pipeline starts from (enrich uses its netns). */
  source?: { name: string; params: Record<string, unknown> };
  /** Time for window/dedupe/ratelimit filters (a TestScheduler in marble tests). */
  scheduler: SchedulerLike;
  /** Where sources report loss and warnings. */
  notices: { next(n: SourceNotice): void };
  /** Called by filters for each record they drop on purpose (ratelimit), for stats. */
  dropped(n: number): void;
  /** A DnsCache fed by the DNS seen in `netns` (for enrich); release it when done. */
  dnsCache(netns: string | undefined, minTtlS: number): { cache: DnsCache; release(): void };
}

/**
 * What a node can do beyond reading records (a policy must grant each
 * explicitly; `"*"` in a policy's sources or filters never does):
 * - read-files: opens a file by path (replay)
 * - verdicts: decides the fate of queued packets (nfqueue)
 * - netns: enters another network namespace (any node given netns=)
 * - firewall: installs nftables rules (dns, and enrich's DNS capture)
 * - capture-dns: reads the DNS traffic of a namespace (dns, enrich)
 */
export const CAPABILITIES = ['read-files', 'verdicts', 'netns', 'firewall', 'capture-dns'] as const;
export type Capability = (typeof CAPABILITIES)[number];

interface Common<P> {
  name: string;
  description: string;
  params: z.ZodType<P>;
  /** Maps positional arguments to named parameters, e.g. project(a, b) → {fields: [a, b]}. */
  positional?: (args: Value[]) => Record<string, Value>;
  /** Extra checks after the parameters parsed (fields exist …). */
  check?: (p: P, ctx: BuildContext) => GraphIssue[];
  /**
   * Capabilities this node uses with these (raw, unparsed) parameters. Every node
   * given `netns=` uses 'netns' whether it says so or not (see nodeCapabilities).
   */
  capabilities?: (params: Record<string, Value>) => Capability[];
}

export interface SourceDef<P = unknown> extends Common<P> {
  kind: 'source';
  /** The fields its records can have (for checking field paths at instantiate). */
  fields: FieldCatalog | ((p: P) => FieldCatalog);
  create(p: P, ctx: BuildContext): Observable<Rec>;
}

/** A synchronous step: called per record with a function to emit records (none to drop it, several to split). */
export type StepFn = (r: Rec, emit: (r: Rec) => void) => void;

/** A step with a life: started when built (timers), told when its input completes (final flush). */
export interface Stepper {
  push: StepFn;
  start?(emit: (r: Rec) => void): () => void;
  complete?(emit: (r: Rec) => void): void;
}

export const asStepper = (s: StepFn | Stepper): Stepper => (typeof s === 'function' ? { push: s } : s);

/**
 * A filter is a synchronous `step` (the fast path: a plain function call per
 * record) or, for anything time-based or stateful in an RxJS way, an
 * operator from `create`.
 */
export interface FilterDef<P = unknown> extends Common<P> {
  kind: 'filter';
  /** Fields of the output, given the input's (default: unchanged). */
  output?: (input: FieldCatalog, p: P) => FieldCatalog;
  step?(p: P, ctx: BuildContext): StepFn | Stepper;
  create?(p: P, ctx: BuildContext): OperatorFunction<Rec, Rec>;
}

export type NodeDef = SourceDef<never> | FilterDef<never>;

const registry = new Map<string, SourceDef<unknown> | FilterDef<unknown>>();

export function registerSource<P>(def: Omit<SourceDef<P>, 'kind'>): void {
  registry.set(def.name, { ...def, kind: 'source' } as SourceDef<unknown>);
}

export function registerFilter<P>(def: Omit<FilterDef<P>, 'kind'>): void {
  if (!def.step && !def.create) throw new Error(`filter ${def.name}: give step() or create()`);
  registry.set(def.name, { ...def, kind: 'filter' } as FilterDef<unknown>);
}

export function lookupNode(name: string): SourceDef<unknown> | FilterDef<unknown> | undefined {
  return registry.get(name);
}

/** The capabilities a node of the graph uses: its own declaration, plus 'netns' for any netns= parameter. */
export function nodeCapabilities(name: string, params: Record<string, Value>): Capability[] {
  const def = registry.get(name);
  const caps = new Set<Capability>(def?.capabilities?.(params) ?? []);
  if (params.netns !== undefined) caps.add('netns');
  return [...caps];
}

/** Parameter names a node accepts (its zod object's keys), or undefined when its schema is not a plain object. */
export function paramNames(name: string): string[] | undefined {
  const shape = (registry.get(name)?.params as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : undefined;
}

export function registeredNames(): { sources: string[]; filters: string[] } {
  const all = [...registry.values()];
  return {
    sources: all.filter((d) => d.kind === 'source').map((d) => d.name),
    filters: all.filter((d) => d.kind === 'filter').map((d) => d.name),
  };
}

/** A filter as an RxJS operator, whether it is written as a step or as an operator. */
export function filterOperator<P>(def: FilterDef<P>, p: P, ctx: BuildContext): OperatorFunction<Rec, Rec> {
  if (def.create) return def.create(p, ctx);
  return (source) =>
    new Observable<Rec>((sub) => {
      const s = asStepper(def.step!(p, ctx));
      const emit = (x: Rec) => sub.next(x);
      const stop = s.start?.(emit);
      const inner = source.subscribe({
        next: (r) => s.push(r, emit),
        error: (e) => sub.error(e),
        complete: () => {
          s.complete?.(emit);
          sub.complete();
        },
      });
      return () => {
        stop?.();
        inner.unsubscribe();
      };
    });
}
