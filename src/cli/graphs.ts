/** Shared by watch / record / graph check: parse a graph, apply --netns to sources that name none, run it as a flow. */
import type { GraphSpec, NodeSpec } from '../filters/spec.js';

export function withNetns(spec: GraphSpec, netns: string | undefined): GraphSpec {
  if (!netns) return spec;
  const visit = (e: GraphSpec['root']): GraphSpec['root'] => {
    if (e.type === 'pipe') return { ...e, steps: e.steps.map(visit) };
    if (e.type === 'fork') return { ...e, branches: e.branches.map(visit) };
    const n = e as NodeSpec;
    if (
      (n.name === 'conntrack' || n.name === 'dns' || n.name === 'arp' || n.name === 'nfqueue') &&
      n.params.netns === undefined
    ) {
      return { ...n, params: { ...n.params, netns } };
    }
    return n;
  };
  return { ...spec, root: visit(spec.root) };
}

/** Names and parameters of the source nodes of a graph (for recording headers). */
export function sourcesOf(
  spec: GraphSpec,
  isSource: (name: string) => boolean,
): { name: string; params: Record<string, unknown> }[] {
  const out: { name: string; params: Record<string, unknown> }[] = [];
  const visit = (e: GraphSpec['root']) => {
    if (e.type === 'pipe') e.steps.forEach(visit);
    else if (e.type === 'fork') e.branches.forEach(visit);
    else if (isSource(e.name)) out.push({ name: e.name, params: { ...e.params } });
  };
  visit(spec.root);
  return out;
}
