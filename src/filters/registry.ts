/**
 * The public registry of sources and filters: each with a zod parameter
 * schema, the fields its records have, and a factory. Library users add
 * their own with registerFilter() / registerSource().
 */
import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { z } from 'zod';
import { FlowgrabError } from '../errors.js';
import type { DnsCache } from '../sources/dns/cache.js';
import type { NoticeObserver } from '../sources/notice.js';
import type { ReadyObserver } from '../sources/ready.js';
import { closestName, type GraphIssue } from './errors.js';
import type { FieldCatalog } from './fields.js';
import type { SpecPath, Value } from './spec.js';

/** A record of any shape: what graph nodes pass along. */
export type Rec = Record<string, unknown>;

/** A shared DnsCache lent to a node; release() when done (shared caches are reference counted). */
export interface DnsCacheLease {
  /** The cache, fed by the DNS seen in the namespace. */
  cache: DnsCache;
  /** Gives the lease back. */
  release(): void;
  /** Resolves once the DNS capture feeding the cache is in place (absent: at once). */
  ready?: Promise<void>;
}

/** What a node's factory gets when the graph is built: its place, its input's fields, time, loss reporting. */
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
  notices: NoticeObserver;
  /** Called by filters for each record they drop on purpose (ratelimit), for stats. */
  dropped(n: number): void;
  /** A DnsCache fed by the DNS seen in `netns` (for enrich); release it when done. */
  dnsCache(netns: string | undefined, minTtlS: number, trustedServers?: readonly string[]): DnsCacheLease;
  /**
   * Where a node says when it captures: a source on subscribe, with what
   * resolves once its kernel resources are in place (a flow's activate()
   * waits for it). Nodes that never call it are ready at once.
   */
  ready?: ReadyObserver;
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
export const CAPABILITIES = ['read-files', 'verdicts', 'netns', 'firewall', 'capture-dns', 'nats'] as const;
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

/** A source for registerSource(): parameters, the fields of its records, and a factory of its Observable. */
export interface SourceDef<P = unknown> extends Common<P> {
  kind: 'source';
  /** The fields its records can have (for checking field paths at instantiate). */
  fields: FieldCatalog | ((p: P) => FieldCatalog);
  /**
   * Its records carry the times they were recorded at, not the present (replay):
   * windows after it close on the records' times only, never by the clock.
   */
  replayed?: boolean;
  /** Its records for parsed parameters `p`: subscribed while a flow uses it, unsubscribed after. */
  create(p: P, ctx: BuildContext): Observable<Rec>;
}

/** A synchronous step: called per record with a function to emit records (none to drop it, several to split). */
export type StepFn = (r: Rec, emit: (r: Rec) => void) => void;

/** A step with a life: started when built (timers), told when its input completes (final flush). */
export interface Stepper {
  /** Called per record. */
  push: StepFn;
  /** Called once when the node is built, with where to emit; returns its stop (timers). */
  start?(emit: (r: Rec) => void): () => void;
  /** The input completed: emit what is held (open windows). */
  complete?(emit: (r: Rec) => void): void;
  /** The flow closes: emit what is held, as at completion (the input may go on for other flows). */
  flush?(emit: (r: Rec) => void): void;
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
  /** A synchronous step (fast path), built once per node. */
  step?(p: P, ctx: BuildContext): StepFn | Stepper;
  /** An RxJS operator, for what a step cannot express. */
  create?(p: P, ctx: BuildContext): OperatorFunction<Rec, Rec>;
}

export type NodeDef = SourceDef<never> | FilterDef<never>;

/** A node as the registry holds it (parameters checked by its schema at build time). */
export type RegisteredNode = SourceDef<unknown> | FilterDef<unknown>;

/** A source for the built-in table (builtin.ts) or for registerSource(). */
export function defineSource<P>(def: Omit<SourceDef<P>, 'kind'>): SourceDef<unknown> {
  return { ...def, kind: 'source' } as SourceDef<unknown>;
}

/** A filter for the built-in table (builtin.ts) or for registerFilter(). */
export function defineFilter<P>(def: Omit<FilterDef<P>, 'kind'>): FilterDef<unknown> {
  if (!def.step && !def.create) {
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `filter ${def.name}: give step() or create()`);
  }
  return { ...def, kind: 'filter' } as FilterDef<unknown>;
}

// One map, filled once from builtin.ts's explicit table and then only by
// add(), which never replaces: a policy inserts scope/redact/ratelimit by
// name, so letting a library user overwrite one would silently swap the
// guard the policy relies on.
const registry = new Map<string, RegisteredNode>();
const builtinNames = new Set<string>();

function add(def: RegisteredNode): void {
  const have = registry.get(def.name);
  if (have) {
    const what = builtinNames.has(def.name) ? `the built-in ${have.kind}` : `a registered ${have.kind}`;
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `${def.kind} ${def.name}: the name is taken by ${what}; pick another name`,
      {
        op: `register ${def.kind}`,
      },
    );
  }
  registry.set(def.name, def);
}

/** Installs builtin.ts's table (once; a second call or a clash is an error). */
export function installBuiltins(table: readonly RegisteredNode[]): void {
  if (builtinNames.size) throw new FlowgrabError('FG_ERR_INVALID_STATE', 'built-in nodes are already installed');
  for (const def of table) {
    add(def);
    builtinNames.add(def.name);
  }
}

/** Adds a source under a new name; a name already taken (built-in or registered) is refused. */
export function registerSource<P>(
  def: Omit<SourceDef<P>, 'kind' | 'create'> & {
    /** Records of any object type (an interface too): the graph reads them as records. */
    create(p: P, ctx: BuildContext): Observable<object>;
  },
): void {
  add(defineSource(def as Omit<SourceDef<P>, 'kind'>));
}

/** Adds a filter under a new name; a name already taken (built-in or registered) is refused. */
export function registerFilter<P>(def: Omit<FilterDef<P>, 'kind'>): void {
  add(defineFilter(def));
}

export function lookupNode(name: string): RegisteredNode | undefined {
  return registry.get(name);
}

/** The registered name closest to a misspelt one (`conntrak` → `conntrack`), if one is near. */
export function suggestNode(name: string): string | undefined {
  return closestName(name, registry.keys());
}

/** True for the nodes of builtin.ts's table. */
export function isBuiltinNode(name: string): boolean {
  return builtinNames.has(name);
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

/** Names of every registered source and filter (built-in and added). */
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
