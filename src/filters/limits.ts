/**
 * Bounds on what a client may ask for, checked before anything else looks
 * at a graph: a hostile graph must cost the checker (and the daemon) work in
 * proportion to these numbers, never more. The daemon caps the text a flow
 * accumulates with checkGraphText(); parseGraph() checks the text length and
 * nesting depth while it parses; authorize() counts nodes, forks and sources
 * of the finished spec (a client may also send a GraphSpec directly).
 */
import { FlowgrabError } from '../errors.js';
import type { GraphIssue } from './errors.js';
import type { ExprSpec } from './spec.js';

export const GRAPH_LIMITS = Object.freeze({
  /** Characters of graph text per flow (all populate calls together). */
  textLength: 64 * 1024,
  /** Source and filter nodes in one graph. */
  nodes: 256,
  /** Forks (`|` groups) in one graph. */
  forks: 64,
  /** Source nodes in one graph: each may open kernel sockets. */
  sources: 16,
  /**
   * Source-to-output paths: a record becomes one copy per path it can take
   * (sequential forks multiply), so this bounds the amplification of one
   * record (24 forks of two branches each would make 2^24 copies).
   */
  paths: 256,
  /** Nesting of parentheses, pipes and forks (and of `[` lists in values). */
  depth: 32,
  /** Characters of one match() expression. */
  exprLength: 4096,
  /** Characters of one `/regex/` in a match expression. */
  patternLength: 256,
});

export type GraphLimitName = keyof typeof GRAPH_LIMITS;

export class GraphLimitError extends FlowgrabError {
  readonly limit: GraphLimitName;
  constructor(limit: GraphLimitName, message: string) {
    super('FG_ERR_GRAPH', message, { op: 'limit' });
    this.limit = limit;
  }
}

/** Throws GraphLimitError when graph text (or the text a flow has accumulated) is longer than allowed. */
export function checkGraphText(text: string): void {
  if (text.length > GRAPH_LIMITS.textLength)
    throw new GraphLimitError(
      'textLength',
      `graph text of ${text.length} characters is above the limit of ${GRAPH_LIMITS.textLength}`,
    );
}

export interface SpecSize {
  nodes: number;
  forks: number;
  sources: number;
  depth: number;
  /** Elements visited: at most one per element, and the walk stops at the first limit passed. */
  visited: number;
}

/**
 * Counts a spec without recursion (a deep spec cannot overflow the stack) and
 * stops as soon as a limit is passed, so a huge spec costs at most the limits.
 * `isSource` tells sources from filters (the registry's knowledge).
 */
export function measureSpec(
  root: unknown,
  isSource: (name: string) => boolean,
): { size: SpecSize; issues: GraphIssue[] } {
  const size: SpecSize = { nodes: 0, forks: 0, sources: 0, depth: 0, visited: 0 };
  const over = (limit: GraphLimitName, what: string): { size: SpecSize; issues: GraphIssue[] } => ({
    size,
    issues: [
      {
        code: 'graph_limit',
        path: [],
        message: `the graph has more than ${GRAPH_LIMITS[limit]} ${what} (limit ${limit}=${GRAPH_LIMITS[limit]})`,
      },
    ],
  });
  const stack: { e: unknown; depth: number }[] = [{ e: root, depth: 1 }];
  while (stack.length) {
    const { e, depth } = stack.pop()!;
    size.visited++;
    if (depth > size.depth) size.depth = depth;
    if (depth > GRAPH_LIMITS.depth) return over('depth', 'levels of nesting');
    if (!e || typeof e !== 'object') continue; // not a spec: the schema says why
    const x = e as Partial<ExprSpec> & { steps?: unknown; branches?: unknown; name?: unknown };
    if (x.type === 'node') {
      if (++size.nodes > GRAPH_LIMITS.nodes) return over('nodes', 'nodes');
      if (typeof x.name === 'string' && isSource(x.name) && ++size.sources > GRAPH_LIMITS.sources)
        return over('sources', 'sources');
      continue;
    }
    const kids = x.type === 'pipe' ? x.steps : x.type === 'fork' ? x.branches : undefined;
    if (x.type === 'fork' && ++size.forks > GRAPH_LIMITS.forks) return over('forks', 'forks');
    if (!Array.isArray(kids)) continue;
    // Every child is a node or more: a list longer than the node limit is over it already.
    if (kids.length > GRAPH_LIMITS.nodes) return over('nodes', 'nodes');
    for (const k of kids) stack.push({ e: k, depth: depth + 1 });
  }
  return { size, issues: [] };
}

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
