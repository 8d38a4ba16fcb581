/** Every path from a source to an output through a graph, as FFPF's ordering rules need. */
import type { ExprSpec, NodeSpec, SpecPath } from '../filters/spec.js';

export interface PathStep {
  node: NodeSpec;
  path: SpecPath;
}

export function graphPaths(root: ExprSpec): PathStep[][] {
  const walk = (e: ExprSpec, path: SpecPath, incoming: PathStep[][]): PathStep[][] => {
    if (e.type === 'node') return incoming.map((p) => [...p, { node: e, path }]);
    if (e.type === 'pipe') return e.steps.reduce((acc, s, i) => walk(s, [...path, 'steps', i], acc), incoming);
    return e.branches.flatMap((b, i) => walk(b, [...path, 'branches', i], incoming));
  };
  return walk(root, ['root'], [[]]);
}

/** Every node with its path, once. */
export function graphNodes(root: ExprSpec): PathStep[] {
  const out: PathStep[] = [];
  const walk = (e: ExprSpec, path: SpecPath) => {
    if (e.type === 'node') out.push({ node: e, path });
    else if (e.type === 'pipe') for (const [i, s] of e.steps.entries()) walk(s, [...path, 'steps', i]);
    else for (const [i, b] of e.branches.entries()) walk(b, [...path, 'branches', i]);
  };
  walk(root, ['root']);
  return out;
}
