/**
 * Graph sources a client may not name whatever the policy says: the
 * daemon's own shared NFQUEUE queue (a graph's nfqueue() on it would join
 * the daemon's binding, see every client's packets and decide them).
 */
import type { GraphIssue } from '../filters/errors.js';
import type { ExprSpec, GraphSpec, SpecPath } from '../filters/spec.js';

/** Issues for every nfqueue() source on one of `queues`; walks without recursion (the graph's depth is the client's). */
export function reservedQueueIssues(graph: GraphSpec, queues: number[]): GraphIssue[] {
  if (queues.length === 0) return [];
  const issues: GraphIssue[] = [];
  const todo: [ExprSpec, SpecPath][] = [[graph.root, ['root']]];
  for (let item = todo.pop(); item; item = todo.pop()) {
    const [e, path] = item;
    if (e.type === 'pipe') for (const [i, s] of e.steps.entries()) todo.push([s, [...path, 'steps', i]]);
    else if (e.type === 'fork') for (const [i, b] of e.branches.entries()) todo.push([b, [...path, 'branches', i]]);
    else if (e.name === 'nfqueue') {
      const q = e.params.queue ?? e.args[0];
      if (typeof q === 'number' && queues.includes(q))
        issues.push({
          code: 'reserved_queue',
          path,
          message: `NFQUEUE queue ${q} is flowgrabd's shared queue: register a mark with \`queue\` instead`,
        });
    }
  }
  return issues;
}
