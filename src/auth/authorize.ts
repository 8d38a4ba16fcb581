/**
 * authorize(graph, who, policy): checks a whole graph against the policy and
 * returns every issue at once, and the graph to run — with the principal's
 * scope and redaction inserted right after each source (enforced, not just
 * checked) and its rate limit at the end. Deny by default, except root.
 */
import type { GraphIssue } from '../filters/errors.js';
import { lookupNode } from '../filters/registry.js';
import type { ExprSpec, GraphSpec, NodeSpec, Value } from '../filters/spec.js';
import { node } from '../filters/spec.js';
import { graphNodes, graphPaths } from './paths.js';
import { type Identity, type Policy, type Principal, principalFor, ROOT_PRINCIPAL } from './policy.js';

export interface AuthContext {
  /** Flows this identity already has open (for limits.flows). */
  openFlows?: number;
  /** The buffer the flow asks for (for limits.bufferRecords). */
  bufferRecords?: number;
}

export interface AuthResult {
  allowed: boolean;
  issues: GraphIssue[];
  /** The graph to run: scope, redaction and rate limit inserted. Equal to the input when denied. */
  graph: GraphSpec;
  principal?: Principal;
}

const who = (id: Identity) => `uid ${id.uid}${id.user ? ` (${id.user})` : ''}`;
const allowed = (list: string[], name: string) => list.includes('*') || list.includes(name);

function paramValue(n: NodeSpec, param: string): Value | undefined {
  if (Object.hasOwn(n.params, param)) return n.params[param];
  const def = lookupNode(n.name);
  if (def?.positional && n.args.length) return def.positional(n.args)[param];
  return undefined;
}

function checkParams(p: Principal, n: NodeSpec, path: GraphIssue['path'], issues: GraphIssue[]): void {
  for (const [key, lim] of Object.entries(p.params)) {
    const [filter, param] = key.split('.');
    if (filter !== n.name) continue;
    const v = paramValue(n, param);
    if (v === undefined) {
      // An unset limited parameter would fall back to the filter's default: make it explicit.
      if (lim.max !== undefined || lim.min !== undefined || lim.oneOf) {
        issues.push({
          code: 'param_required',
          path,
          message: `${n.name}: set ${param} explicitly (your policy limits it)`,
        });
      }
      continue;
    }
    if (lim.max !== undefined && !(typeof v === 'number' && v <= lim.max)) {
      issues.push({
        code: 'param_limit',
        path,
        message: `${n.name}: ${param}=${JSON.stringify(v)} is above your limit of ${lim.max}`,
      });
    }
    if (lim.min !== undefined && !(typeof v === 'number' && v >= lim.min)) {
      issues.push({
        code: 'param_limit',
        path,
        message: `${n.name}: ${param}=${JSON.stringify(v)} is below your minimum of ${lim.min}`,
      });
    }
    if (lim.oneOf && !lim.oneOf.includes(v as string | number | boolean)) {
      issues.push({
        code: 'param_limit',
        path,
        message: `${n.name}: ${param}=${JSON.stringify(v)} is not one of ${lim.oneOf.map((x) => JSON.stringify(x)).join(', ')}`,
      });
    }
  }
}

function checkOrder(p: Principal, root: ExprSpec, issues: GraphIssue[]): void {
  const seen = new Set<string>();
  for (const path of graphPaths(root)) {
    const names = path.map((s) => s.node.name);
    for (const rule of p.order) {
      path.forEach((s, i) => {
        if (s.node.name !== rule.filter) return;
        const ok =
          rule.position === 'before'
            ? names.slice(0, i).includes(rule.requires)
            : names.slice(i + 1).includes(rule.requires);
        const key = `${JSON.stringify(s.path)}|${rule.filter}|${rule.requires}|${rule.position}`;
        if (ok || seen.has(key)) return;
        seen.add(key);
        const shown = rule.position === 'before' ? names.slice(0, i + 1) : names;
        issues.push({
          code: 'order',
          path: s.path,
          message: `filter \`${rule.filter}\` needs \`${rule.requires}\` ${rule.position} it on the path ${shown.join(' → ')}`,
        });
      });
    }
  }
}

/** Inserts scope and redaction after each source node, and the rate limit at the end. */
function enforce(p: Principal, root: ExprSpec): ExprSpec {
  const guards: NodeSpec[] = [];
  if (p.scope?.length) guards.push(node('scope', [], { cidrs: p.scope }));
  if (p.redact.length) guards.push(node('redact', [], { fields: p.redact }));
  const wrap = (e: ExprSpec): ExprSpec => {
    if (e.type === 'pipe') return { type: 'pipe', steps: e.steps.map((s, i) => (i === 0 ? wrap(s) : s)) };
    if (e.type === 'fork')
      return { type: 'fork', branches: e.branches.map((b) => (startsWithSource(b) ? wrap(b) : b)) };
    if (guards.length && lookupNode(e.name)?.kind === 'source') return { type: 'pipe', steps: [e, ...guards] };
    return e;
  };
  const guarded = wrap(root);
  const rate = p.limits.recordsPerSecond;
  return rate ? { type: 'pipe', steps: [guarded, node('ratelimit', [], { rate })] } : guarded;
}

function startsWithSource(e: ExprSpec): boolean {
  if (e.type === 'node') return lookupNode(e.name)?.kind === 'source';
  if (e.type === 'pipe') return startsWithSource(e.steps[0]);
  return e.branches.some(startsWithSource);
}

export function authorize(graph: GraphSpec, id: Identity, policy: Policy, ctx: AuthContext = {}): AuthResult {
  const p = principalFor(policy, id) ?? (id.uid === 0 ? ROOT_PRINCIPAL : undefined);
  if (!p)
    return {
      allowed: false,
      graph,
      issues: [{ code: 'no_principal', path: [], message: `${who(id)} is not in the policy: denied` }],
    };
  const issues: GraphIssue[] = [];
  for (const { node: n, path } of graphNodes(graph.root)) {
    const kind = lookupNode(n.name)?.kind;
    if (kind === 'source' && !allowed(p.sources, n.name))
      issues.push({ code: 'source_denied', path, message: `source \`${n.name}\` is not allowed for ${who(id)}` });
    if (kind === 'filter' && !allowed(p.filters, n.name))
      issues.push({ code: 'filter_denied', path, message: `filter \`${n.name}\` is not allowed for ${who(id)}` });
    if (kind === 'filter') checkParams(p, n, path, issues);
  }
  checkOrder(p, graph.root, issues);
  const lim = p.limits;
  if (lim.flows !== undefined && (ctx.openFlows ?? 0) >= lim.flows) {
    issues.push({
      code: 'flow_limit',
      path: [],
      message: `${who(id)} already has ${ctx.openFlows} flows open (limit ${lim.flows})`,
    });
  }
  if (lim.bufferRecords !== undefined && (ctx.bufferRecords ?? 0) > lim.bufferRecords) {
    issues.push({
      code: 'buffer_limit',
      path: [],
      message: `a buffer of ${ctx.bufferRecords} records is above your limit of ${lim.bufferRecords}`,
    });
  }
  if (issues.length) return { allowed: false, issues, graph, principal: p };
  return { allowed: true, issues: [], graph: { version: 1, root: enforce(p, graph.root) }, principal: p };
}

/** authorize() that never throws: an unexpected failure is an issue (and a denial). */
export function safeAuthorize(graph: GraphSpec, id: Identity, policy: Policy, ctx: AuthContext = {}): AuthResult {
  try {
    return authorize(graph, id, policy, ctx);
  } catch (err) {
    return {
      allowed: false,
      graph,
      issues: [{ code: 'internal', path: [], message: `authorization failed: ${(err as Error).message}` }],
    };
  }
}
