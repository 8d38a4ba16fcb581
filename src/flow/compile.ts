/**
 * Turns a validated GraphSpec into one RxJS pipeline. Every stage is keyed
 * by its whole upstream (source config + filters so far), so flows of one
 * Flowgrab whose graphs share a prefix share that prefix's stages: each
 * record is evaluated there once however many flows read it.
 */
import { merge, type Observable, type SchedulerLike, Subject, share, tap } from 'rxjs';
import type { GraphIssue } from '../filters/errors.js';
import { ANY_FIELDS, type FieldCatalog } from '../filters/fields.js';
import { type BuildContext, type FilterDef, lookupNode, type Rec, type SourceDef } from '../filters/registry.js';
import type { ExprSpec, GraphSpec, NodeSpec, SpecPath } from '../filters/spec.js';
import type { DnsCache } from '../sources/dns/cache.js';
import type { SourceNotice } from '../sources/notice.js';

export interface NodeStats {
  node: string;
  path: string;
  in: number;
  out: number;
  dropped: number;
}

export interface Stage {
  key: string;
  /** Keys of every stage on the way here (this one included), for reference counting. */
  keys: string[];
  obs: Observable<Rec>;
  catalog: FieldCatalog;
  /** Stats of every node on the way here, upstream first. */
  nodes: NodeStats[];
  /** Source stages feeding this one, with their notice streams. */
  sources: SourceStage[];
  source?: { name: string; params: Record<string, unknown> };
}

export interface SourceStage {
  key: string;
  notices: Subject<SourceNotice>;
}

export interface Services {
  scheduler: SchedulerLike;
  dnsCache: BuildContext['dnsCache'];
}

/** Stands in for a stage that failed its checks: any field, no sources. */
function placeholder(up: Stage | null): Stage {
  return {
    key: '?',
    keys: [],
    obs: undefined as unknown as Observable<Rec>,
    catalog: ANY_FIELDS,
    nodes: [],
    sources: [],
    source: up?.source,
  };
}

const pathText = (p: SpecPath) =>
  p
    .map((x) => (typeof x === 'number' ? `[${x}]` : `.${x}`))
    .join('')
    .replace(/^\./, '');

/** Parses a node's parameters with its definition's schema; issues on failure. */
export function nodeParams(
  n: NodeSpec,
  def: SourceDef<unknown> | FilterDef<unknown>,
  path: SpecPath,
  issues: GraphIssue[],
): unknown {
  const raw = { ...(n.args.length ? (def.positional?.(n.args) ?? { _args: n.args }) : {}), ...n.params };
  const r = def.params.safeParse(raw);
  if (r.success) return r.data;
  for (const i of r.error.issues) {
    const where = i.path.length ? ` ${i.path.join('.')}` : '';
    issues.push({
      code: 'bad_parameter',
      path: [...path, 'params', ...i.path.map(String)],
      message: `${n.name}:${where} ${i.message}`,
    });
  }
  return undefined;
}

export class Compiler {
  private readonly stages = new Map<string, Stage>();

  constructor(private readonly services: Services) {}

  /** Checks the whole graph without building anything; returns every issue. */
  check(g: GraphSpec): { issues: GraphIssue[]; catalog?: FieldCatalog } {
    const issues: GraphIssue[] = [];
    const st = this.walk(g.root, null, ['root'], issues, false);
    return { issues, catalog: st?.catalog };
  }

  /** Builds (or reuses) the stages of a graph that check() accepted. */
  build(g: GraphSpec): Stage {
    const issues: GraphIssue[] = [];
    const st = this.walk(g.root, null, ['root'], issues, true);
    if (!st || issues.length)
      throw new Error(`internal: build of a graph with issues: ${issues.map((i) => i.message).join('; ')}`);
    return st;
  }

  private walk(
    e: ExprSpec,
    input: Stage | null,
    path: SpecPath,
    issues: GraphIssue[],
    build: boolean,
  ): Stage | undefined {
    if (e.type === 'pipe') {
      let cur = input;
      let failed = false;
      for (const [i, step] of e.steps.entries()) {
        const next = this.walk(step, cur, [...path, 'steps', i], issues, build);
        // Keep checking the steps after a bad one (against unknown fields), so every issue is reported at once.
        if (!next) failed = true;
        cur = next ?? placeholder(cur);
      }
      return failed ? undefined : (cur ?? undefined);
    }
    if (e.type === 'fork') {
      const branches = e.branches.map((b, i) => this.walk(b, input, [...path, 'branches', i], issues, build));
      if (branches.some((b) => !b)) return undefined;
      const bs = branches as Stage[];
      const key = `(${bs.map((b) => b.key).join(' | ')})`;
      return this.reuse(key, build, () => ({
        key,
        keys: [...new Set([...bs.flatMap((b) => b.keys), key])],
        obs: build ? merge(...bs.map((b) => b.obs)).pipe(share()) : (undefined as unknown as Observable<Rec>),
        catalog: new Map(bs.flatMap((b) => [...b.catalog])),
        nodes: bs.flatMap((b) => b.nodes),
        sources: bs.flatMap((b) => b.sources),
        source: bs[0].source,
      }));
    }
    return this.node(e, input, path, issues, build);
  }

  private reuse(key: string, build: boolean, make: () => Stage): Stage {
    if (!build) return make();
    let st = this.stages.get(key);
    if (!st) {
      st = make();
      this.stages.set(key, st);
    }
    return st;
  }

  private node(
    n: NodeSpec,
    input: Stage | null,
    path: SpecPath,
    issues: GraphIssue[],
    build: boolean,
  ): Stage | undefined {
    const def = lookupNode(n.name);
    if (!def) {
      issues.push({ code: 'unknown_node', path, message: `"${n.name}" is neither a source nor a filter` });
      return undefined;
    }
    if (def.kind === 'source' && input) {
      issues.push({
        code: 'source_with_input',
        path,
        message: `source "${n.name}" cannot take input: a source starts a pipeline (use "|" to add sources)`,
      });
      return undefined;
    }
    if (def.kind === 'filter' && !input) {
      issues.push({
        code: 'filter_without_input',
        path,
        message: `filter "${n.name}" has no input: a graph starts with a source`,
      });
      return undefined;
    }
    const p = nodeParams(n, def, path, issues);
    if (p === undefined) return undefined;
    const stats: NodeStats = { node: n.name, path: pathText(path), in: 0, out: 0, dropped: 0 };
    const notices = new Subject<SourceNotice>();
    const ctx: BuildContext = {
      path,
      input: input?.catalog ?? new Map(),
      source: input?.source,
      scheduler: this.services.scheduler,
      notices,
      dropped: (k) => {
        stats.dropped += k;
      },
      dnsCache: this.services.dnsCache,
    };
    const problems = def.check?.(p as never, ctx) ?? [];
    if (problems.length) {
      issues.push(...problems);
      return undefined;
    }
    const key = `${input ? `${input.key} -> ` : ''}${n.name}${JSON.stringify(p)}`;
    if (def.kind === 'source') {
      const fields = typeof def.fields === 'function' ? def.fields(p as never) : def.fields;
      const source = { name: n.name, params: p as Record<string, unknown> };
      return this.reuse(key, build, () => ({
        key,
        keys: [key],
        obs: build
          ? def.create(p as never, ctx).pipe(
              tap(() => stats.out++),
              share(),
            )
          : (undefined as unknown as Observable<Rec>),
        catalog: fields,
        nodes: [stats],
        sources: [{ key, notices }],
        source,
      }));
    }
    const up = input!;
    return this.reuse(key, build, () => ({
      key,
      keys: [...up.keys, key],
      obs: build
        ? up.obs.pipe(
            tap(() => stats.in++),
            def.create(p as never, ctx),
            tap(() => stats.out++),
            share(),
          )
        : (undefined as unknown as Observable<Rec>),
      catalog: def.output?.(up.catalog, p as never) ?? up.catalog,
      nodes: [...up.nodes, stats],
      sources: up.sources,
      source: up.source,
    }));
  }

  private readonly refs = new Map<string, number>();

  /** A flow now uses these stages. */
  retain(keys: string[]): void {
    for (const k of keys) this.refs.set(k, (this.refs.get(k) ?? 0) + 1);
  }

  /** A flow no longer uses these stages: forget those nobody uses. */
  release(keys: string[]): void {
    for (const k of keys) {
      const n = (this.refs.get(k) ?? 1) - 1;
      if (n > 0) this.refs.set(k, n);
      else {
        this.refs.delete(k);
        this.stages.delete(k);
      }
    }
  }

  get size(): number {
    return this.stages.size;
  }
}

export type { DnsCache };
