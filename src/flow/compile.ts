/**
 * Compiles validated GraphSpecs into the push network (network.ts). Every
 * node is keyed by its whole upstream (source config + filters so far), so
 * flows of one Flowgrab whose graphs share a prefix share that prefix's
 * nodes. Nodes are reference counted by the flows that use them and
 * disconnected (sources unsubscribed) when the last one goes. Runs of plain
 * steps share one fused node (fuse.ts); each step is still its own stage.
 */
import type { SchedulerLike } from 'rxjs';
import { Subject } from 'rxjs';
import { describeParamIssue, type GraphIssue } from '../filters/errors.js';
import { withRegexBudget } from '../filters/expr/regex.js';
import { ANY_FIELDS, type FieldCatalog } from '../filters/fields.js';
import {
  asStepper,
  type BuildContext,
  type FilterDef,
  lookupNode,
  paramNames,
  type SourceDef,
  suggestNode,
} from '../filters/registry.js';
import type { ExprSpec, GraphSpec, NodeSpec, SpecPath } from '../filters/spec.js';
import type { SourceNotice } from '../sources/notice.js';
import { type Attachable, FusedNode, FusedPoint, fusion } from './fuse.js';
import { MergeNode, type NodeStats, OperatorNode, Readiness, SourceNode, StepNode } from './network.js';

export type { NodeStats } from './network.js';

export interface SourceStage {
  key: string;
  notices: Subject<SourceNotice>;
}

/** A node whose kernel resources say when they capture (a source; enrich's DNS capture). */
export interface ReadyStage {
  /** The node and its parameters, for errors. */
  what: string;
  /** Resolves once it captures; rejects with why it never will. */
  wait(): Promise<void>;
}

export interface Stage {
  key: string;
  /** Keys of every stage on the way here (this one included), for reference counting. */
  keys: string[];
  /** Where records come out (absent when only checking). */
  node?: Attachable;
  catalog: FieldCatalog;
  /** Stats of every node on the way here, upstream first. */
  nodes: NodeStats[];
  sources: SourceStage[];
  /** Nodes on the way here that capture from the kernel: activate waits for them. */
  ready: ReadyStage[];
  source?: { name: string; params: Record<string, unknown> };
  /** Detaches this stage's node from its upstream(s). */
  disconnect?: () => void;
}

export interface Services {
  scheduler: SchedulerLike;
  dnsCache: BuildContext['dnsCache'];
}

/** Stands in for a stage that failed its checks: any field, no sources. */
function placeholder(up: Stage | null): Stage {
  return { key: '?', keys: [], catalog: ANY_FIELDS, nodes: [], sources: [], ready: [], source: up?.source };
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
  const r = def.params.safeParse(raw, { reportInput: true });
  if (r.success) return r.data;
  for (const i of r.error.issues) {
    issues.push({
      code: 'bad_parameter',
      path: [...path, 'params', ...i.path.map(String)],
      message: `${n.name}: ${describeParamIssue(i, paramNames(def.name))}`,
    });
  }
  return undefined;
}

const isReplayed = (s: Stage['source']): boolean => {
  const def = s && lookupNode(s.name);
  return def?.kind === 'source' && def.replayed === true;
};

export class Compiler {
  private readonly stages = new Map<string, Stage>();
  private readonly refs = new Map<string, number>();

  constructor(private readonly services: Services) {}

  /** Checks the whole graph without building anything; returns every issue. */
  check(g: GraphSpec): { issues: GraphIssue[]; catalog?: FieldCatalog } {
    const issues: GraphIssue[] = [];
    const st = withRegexBudget(() => this.walk(g.root, null, ['root'], issues, false));
    return { issues, catalog: st?.catalog };
  }

  /** Builds (or reuses) the stages of a graph that check() accepted, and retains them for one flow. */
  build(g: GraphSpec): Stage {
    const issues: GraphIssue[] = [];
    const st = withRegexBudget(() => this.walk(g.root, null, ['root'], issues, true));
    if (!st?.node || issues.length)
      throw new Error(`internal: build of a graph with issues: ${issues.map((i) => i.message).join('; ')}`);
    for (const k of st.keys) this.refs.set(k, (this.refs.get(k) ?? 0) + 1);
    return st;
  }

  /** A flow no longer uses these stages: disconnect and forget those nobody uses (downstream first). */
  release(keys: string[]): void {
    for (const k of [...keys].reverse()) {
      const n = (this.refs.get(k) ?? 1) - 1;
      if (n > 0) {
        this.refs.set(k, n);
        continue;
      }
      this.refs.delete(k);
      this.stages.get(k)?.disconnect?.();
      this.stages.delete(k);
    }
  }

  /**
   * Flushes the held state (open windows) of the stages only this flow uses,
   * upstream first, so what one flushes passes through the next. Stages shared
   * with another flow keep their windows for it.
   */
  flushOwn(keys: string[]): void {
    for (const k of keys) {
      const node = this.refs.get(k) === 1 ? this.stages.get(k)?.node : undefined;
      if (node instanceof StepNode) node.flush();
    }
  }

  get size(): number {
    return this.stages.size;
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
    if (e.type === 'fork') return this.fork(e.branches, input, path, issues, build);
    return this.node(e, input, path, issues, build);
  }

  private fork(
    branches: ExprSpec[],
    input: Stage | null,
    path: SpecPath,
    issues: GraphIssue[],
    build: boolean,
  ): Stage | undefined {
    const bs = branches.map((b, i) => this.walk(b, input, [...path, 'branches', i], issues, build));
    if (bs.some((b) => !b)) return undefined;
    const ok = bs as Stage[];
    const key = `(${ok.map((b) => b.key).join(' | ')})`;
    const stats: NodeStats = { node: 'fork', path: pathText(path), in: 0, out: 0, dropped: 0 };
    return this.reuse(key, build, () => {
      const st: Stage = {
        key,
        keys: [...new Set([...ok.flatMap((b) => b.keys), key])],
        catalog: new Map(ok.flatMap((b) => [...b.catalog])),
        nodes: [...ok.flatMap((b) => b.nodes), stats],
        sources: ok.flatMap((b) => b.sources),
        // Windows after the join run on the clock when any branch is live (see SourceDef.replayed).
        ready: ok.flatMap((b) => b.ready),
        source: ok.find((b) => !isReplayed(b.source))?.source ?? ok[0].source,
      };
      if (build) {
        const m = new MergeNode(stats, ok.length);
        const detach = ok.map((b) => b.node!.attach(m));
        st.node = m;
        st.disconnect = () => {
          for (const d of detach) d();
        };
      }
      return st;
    });
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
      const near = suggestNode(n.name);
      const hint = near ? `; did you mean "${near}"?` : '';
      issues.push({ code: 'unknown_node', path, message: `"${n.name}" is neither a source nor a filter${hint}` });
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
    // Where this node's readiness signals go once built (a source's: its current subscription's).
    let readiness: Readiness | undefined;
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
      ready: (capturing) => readiness?.add(capturing),
    };
    const problems = def.check?.(p as never, ctx) ?? [];
    if (problems.length) {
      issues.push(...problems);
      return undefined;
    }
    const what = `${n.name}${JSON.stringify(p)}`;
    const key = `${input ? `${input.key} -> ` : ''}${what}`;
    if (def.kind === 'source') {
      const fields = typeof def.fields === 'function' ? def.fields(p as never) : def.fields;
      return this.reuse(key, build, () => {
        const st: Stage = {
          key,
          keys: [key],
          catalog: fields,
          nodes: [stats],
          sources: [{ key, notices }],
          ready: [],
          source: { name: n.name, params: p as Record<string, unknown> },
        };
        if (build) {
          const src = new SourceNode(stats, () => def.create(p as never, ctx));
          readiness = src.readiness;
          st.ready = [{ what, wait: () => src.readiness.wait() }];
          st.node = src;
          st.disconnect = () => src.stop();
        }
        return st;
      });
    }
    const up = input!;
    return this.reuse(key, build, () => {
      const st: Stage = {
        key,
        keys: [...up.keys, key],
        catalog: def.output?.(up.catalog, p as never) ?? up.catalog,
        nodes: [...up.nodes, stats],
        sources: up.sources,
        ready: up.ready,
        source: up.source,
      };
      if (build) {
        const own = new Readiness();
        readiness = own;
        const step = def.step?.(p as never, ctx);
        if (typeof step === 'function' && fusion.enabled) {
          // A plain step joins the fused run it follows, or starts one (records only flow once it is attached).
          const last = up.node instanceof FusedPoint && up.node.node.isLast(up.node.index);
          const fused = last ? (up.node as FusedPoint).node : new FusedNode();
          const point = fused.append(stats, step);
          if (!last) fused.detachUp = up.node!.attach(fused);
          st.node = point;
          st.disconnect = () => fused.truncate(point.index);
          return st;
        }
        const node = step
          ? new StepNode(stats, asStepper(step))
          : new OperatorNode(stats, def.create!(p as never, ctx));
        const detach = up.node!.attach(node);
        if (own.size) st.ready = [...up.ready, { what, wait: () => own.wait() }];
        st.node = node;
        st.disconnect = () => {
          detach();
          node.dispose();
        };
      }
      return st;
    });
  }
}
