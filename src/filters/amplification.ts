/**
 * How many copies of one record a graph can emit (nested forks multiply
 * them), and the issue when that passes GRAPH_LIMITS.paths. Apart from
 * limits.ts because it reads the spec types, and spec.ts calls limits.ts.
 */
import type { GraphIssue } from './errors.js';
import { GRAPH_LIMITS } from './limits.js';
import type { ExprSpec } from './spec.js';

/**
 * Copies of one record a graph can emit: 1 per node, multiplied along a pipe,
 * summed over a fork's branches (an over-estimate when a source stands after
 * `->`, which is safe). Saturates just above the limit, so numbers stay
 * small; recursion is bounded because measureSpec() checked the depth first.
 */
export function countPaths(e: ExprSpec): number {
  const cap = GRAPH_LIMITS.paths + 1;
  if (e.type === 'node') return 1;
  if (e.type === 'pipe') return e.steps.reduce((n, s) => Math.min(cap, n * countPaths(s)), 1);
  return e.branches.reduce((n, b) => Math.min(cap, n + countPaths(b)), 0);
}

/** The amplification limit as issues (empty when within it); call after measureSpec() passed. */
export function pathIssues(root: ExprSpec): GraphIssue[] {
  return countPaths(root) > GRAPH_LIMITS.paths
    ? [
        {
          code: 'graph_limit',
          path: [],
          message: `the graph has more than ${GRAPH_LIMITS.paths} paths from its sources to its output: each record would be copied as many times (limit paths=${GRAPH_LIMITS.paths})`,
        },
      ]
    : [];
}
