/**
 * Bounds on what a client may ask for, checked before anything else looks
 * at a graph: a hostile graph must cost the checker (and the daemon) work in
 * proportion to these numbers, never more. The daemon caps the text a flow
 * accumulates with checkGraphText(); parseGraph() checks the text length and
 * nesting depth while it parses; authorize() counts nodes, forks and sources
 * of the finished spec (a client may also send a GraphSpec directly).
 */
import { GraphError, type GraphIssue } from './errors.js';

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
  /** Field paths one parameter names (project's fields, count's by, …): records have a few dozen fields. */
  fields: 64,
  /** Keys one stateful filter holds (groups of a count/sum/top window, keys dedupe remembers). */
  stateKeys: 100_000,
  /**
   * Values in a graph's arguments and parameters, list elements and parameter names each counting one (a GraphSpec
   * sent as JSON: the schema's check costs per value, and 200 000 of them stalled the daemon for a second).
   */
  values: 4096,
});

export type GraphLimitName = keyof typeof GRAPH_LIMITS;

/** A graph over one of GRAPH_LIMITS: a GraphError (one `graph_limit` issue) that names the limit. */
export class GraphLimitError extends GraphError {
  readonly limit: GraphLimitName;
  constructor(limit: GraphLimitName, message: string) {
    super([{ code: 'graph_limit', path: [], message }]);
    this.message = message;
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

/** What the values of a spec's nodes have used so far: values, and characters of names and strings. */
interface ValueBudget {
  values: number;
  chars: number;
}

/**
 * Walks a node's arguments and parameters without recursion, counting into `used` (values, and characters of
 * strings and parameter names, which share the text's limit: a spec carries no more than its text could), and
 * stops at the first limit passed. Returns the limit passed, or undefined.
 */
function measureValues(n: { args?: unknown; params?: unknown }, used: ValueBudget): GraphLimitName | undefined {
  const stack: { v: unknown; d: number }[] = [{ v: n.args, d: 0 }];
  if (n.params && typeof n.params === 'object' && !Array.isArray(n.params))
    for (const k in n.params) {
      if (!Object.hasOwn(n.params, k)) continue;
      used.chars += k.length;
      if (++used.values > GRAPH_LIMITS.values) return 'values';
      stack.push({ v: (n.params as Record<string, unknown>)[k], d: 1 });
    }
  if (used.chars > GRAPH_LIMITS.textLength) return 'textLength';
  while (stack.length) {
    const { v, d } = stack.pop()!;
    if (typeof v === 'string' && (used.chars += v.length) > GRAPH_LIMITS.textLength) return 'textLength';
    if (!Array.isArray(v)) continue;
    if (d > GRAPH_LIMITS.depth) return 'depth';
    if ((used.values += v.length) > GRAPH_LIMITS.values) return 'values';
    for (const x of v) if (typeof x === 'string' || Array.isArray(x)) stack.push({ v: x, d: d + 1 });
  }
  return undefined;
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
  const used: ValueBudget = { values: 0, chars: 0 };
  while (stack.length) {
    const { e, depth } = stack.pop()!;
    size.visited++;
    if (depth > size.depth) size.depth = depth;
    if (depth > GRAPH_LIMITS.depth) return over('depth', 'levels of nesting');
    if (!e || typeof e !== 'object') continue; // not a spec: the schema says why
    const x = e as {
      type?: unknown;
      steps?: unknown;
      branches?: unknown;
      name?: unknown;
      args?: unknown;
      params?: unknown;
    };
    if (x.type === 'node') {
      if (++size.nodes > GRAPH_LIMITS.nodes) return over('nodes', 'nodes');
      if (typeof x.name === 'string') used.chars += x.name.length;
      const passed = measureValues(x, used);
      if (passed === 'depth') return over('depth', 'levels of nesting in a parameter');
      if (passed === 'values') return over('values', 'argument and parameter values');
      if (passed === 'textLength') return over('textLength', 'characters in names and strings');
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
