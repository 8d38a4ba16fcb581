/** Walking a graph spec: every node once, without recursion (specs are measured before, but this never trusts it). */
import type { ExprSpec, NodeSpec, SpecPath } from '../filters/spec.js';

export interface PathStep {
  node: NodeSpec;
  path: SpecPath;
}

/** Most paths graphPaths() lists before it refuses: n nested forks have 2^n of them. */
export const MAX_PATHS = 10_000;

/**
 * Every path from a source to an output. Exponential in the number of nested
 * forks, so bounded (throws past MAX_PATHS); authorize() does not use it
 * (its ordering rules are a one-pass dataflow analysis).
 */
export function graphPaths(root: ExprSpec): PathStep[][] {
  const walk = (e: ExprSpec, path: SpecPath, incoming: PathStep[][]): PathStep[][] => {
    if (incoming.length > MAX_PATHS) throw new RangeError(`the graph has more than ${MAX_PATHS} paths`);
    if (e.type === 'node') return incoming.map((p) => [...p, { node: e, path }]);
    if (e.type === 'pipe') return e.steps.reduce((acc, s, i) => walk(s, [...path, 'steps', i], acc), incoming);
    return e.branches.flatMap((b, i) => walk(b, [...path, 'branches', i], incoming));
  };
  return walk(root, ['root'], [[]]);
}

/** Every node with its path, once, in graph order. */
export function graphNodes(root: ExprSpec): PathStep[] {
  const out: PathStep[] = [];
  const stack: { e: ExprSpec; path: SpecPath }[] = [{ e: root, path: ['root'] }];
  while (stack.length) {
    const { e, path } = stack.pop()!;
    if (e.type === 'node') out.push({ node: e, path });
    else if (e.type === 'pipe')
      for (let i = e.steps.length - 1; i >= 0; i--) stack.push({ e: e.steps[i], path: [...path, 'steps', i] });
    else
      for (let i = e.branches.length - 1; i >= 0; i--) stack.push({ e: e.branches[i], path: [...path, 'branches', i] });
  }
  return out;
}
