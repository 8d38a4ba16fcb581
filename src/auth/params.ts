/**
 * Parameter limits of a policy ("node.param": {min, max, oneOf}), applied to
 * sources and filters alike. Durations compare as durations: "5s", 5000 and
 * "5000ms" are the same limit and the same value. A parameter the policy
 * limits but the graph leaves out must be given (its default could be above
 * the limit). `netns=` needs either the 'netns' capability (any namespace) or
 * a "node.netns" rule naming the allowed ones; without, only the daemon's own.
 */
import type { GraphIssue } from '../filters/errors.js';
import { Duration } from '../filters/params.js';
import { lookupNode, paramNames, registeredNames } from '../filters/registry.js';
import type { NodeSpec, Value } from '../filters/spec.js';
import type { Principal } from './policy.js';

/** Named and positional parameters of a node, as one record. */
export function nodeParams(n: NodeSpec): Record<string, Value> {
  const def = lookupNode(n.name);
  const pos = def?.positional && n.args.length ? def.positional(n.args) : {};
  return { ...pos, ...n.params };
}

/** A number, or a duration in ms; undefined when it is neither. */
function magnitude(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  const d = Duration.safeParse(v);
  return d.success ? d.data : undefined;
}

const show = (v: unknown) => JSON.stringify(v);

export function checkParams(p: Principal, n: NodeSpec, path: GraphIssue['path'], issues: GraphIssue[]): void {
  const params = nodeParams(n);
  const push = (code: string, message: string) => issues.push({ code, path, message: `${n.name}: ${message}` });
  if (params.netns !== undefined && !p.capabilities.includes('netns') && !p.params[`${n.name}.netns`])
    push('param_denied', `netns=${show(params.netns)}: your policy allows only the daemon's own network namespace`);
  for (const [key, lim] of Object.entries(p.params)) {
    const dot = key.indexOf('.');
    if (key.slice(0, dot) !== n.name) continue;
    const param = key.slice(dot + 1);
    const v = params[param];
    if (v === undefined) {
      // An unset limited parameter would fall back to the node's default: make it explicit.
      push('param_required', `set ${param} explicitly (your policy limits it)`);
      continue;
    }
    const x = magnitude(v);
    if (lim.max !== undefined && !(x !== undefined && x <= magnitude(lim.max)!))
      push('param_limit', `${param}=${show(v)} is above your limit of ${lim.max}`);
    if (lim.min !== undefined && !(x !== undefined && x >= magnitude(lim.min)!))
      push('param_limit', `${param}=${show(v)} is below your minimum of ${lim.min}`);
    if (lim.oneOf && !oneOf(v, lim.oneOf))
      push('param_limit', `${param}=${show(v)} is not one of ${lim.oneOf.map(show).join(', ')}`);
  }
}

/**
 * enrich() captures DNS (nftables rules and a log group) in the namespace of the source before it, as dns() would
 * there: a graph with an enrich may name a namespace in a source only where the policy lets dns() capture (the
 * 'netns' capability, or a "dns.netns" rule naming it). A grant to read conntrack in a namespace is not one to
 * install firewall rules in it.
 */
export function enrichNetnsIssues(p: Principal, nodes: { node: NodeSpec; path: GraphIssue['path'] }[]): GraphIssue[] {
  if (p.capabilities.includes('netns')) return [];
  const enrich = nodes.find((n) => n.node.name === 'enrich');
  if (!enrich) return [];
  const rule = p.params['dns.netns'];
  const issues: GraphIssue[] = [];
  for (const { node } of nodes) {
    if (lookupNode(node.name)?.kind !== 'source') continue;
    const netns = nodeParams(node).netns;
    if (netns === undefined || (rule?.oneOf && oneOf(netns, rule.oneOf))) continue;
    issues.push({
      code: 'param_denied',
      path: enrich.path,
      message: `enrich: captures DNS in ${node.name}(netns=${show(netns)})'s namespace: your policy allows DNS capture only ${rule?.oneOf ? `in ${rule.oneOf.map(show).join(', ')}` : "in the daemon's own namespace"}`,
    });
  }
  return issues;
}

/** A list value (events=[new, destroy]) passes when each item is allowed; durations compare as durations. */
function oneOf(v: Value, allowed: (string | number | boolean)[]): boolean {
  const items = Array.isArray(v) ? v : [v];
  return (
    items.length > 0 &&
    items.every((i) => allowed.some((a) => a === i || (magnitude(a) !== undefined && magnitude(a) === magnitude(i))))
  );
}

/** Problems with the keys of a policy's params: each must be "node.param" of a registered node. */
export function paramKeyProblems(keys: string[]): string[] {
  const known = registeredNames();
  const all = new Set([...known.sources, ...known.filters]);
  const out: string[] = [];
  for (const key of keys) {
    const [node, param] = key.split('.');
    if (!all.has(node)) {
      out.push(`params."${key}": no source or filter is named ${node}`);
      continue;
    }
    const names = paramNames(node);
    if (names && !names.includes(param))
      out.push(`params."${key}": ${node} has no parameter ${param} (it has ${names.join(', ')})`);
  }
  return out;
}
