/**
 * Building graphs in code; produces the same GraphSpec as the text form.
 *
 *   graph.source('conntrack', { events: ['new'] })
 *     .match('proto == tcp')
 *     .fork(graph.filter('count', { by: 'orig.src', every: '10s' }), graph.filter('sample', { rate: 0.1 }))
 *     .toSpec()
 */
import { printGraph } from './print.js';
import { type ExprSpec, type GraphSpec, node, type Value } from './spec.js';

export class GraphBuilder {
  constructor(private readonly steps: ExprSpec[]) {}

  /** Appends a filter: `-> name(args…, params…)`. */
  to(name: string, params: Record<string, Value> = {}, ...args: Value[]): GraphBuilder {
    return new GraphBuilder([...this.steps, node(name, args, params)]);
  }

  match(expr: string): GraphBuilder {
    return this.to('match', {}, expr);
  }

  /** Appends a fork: every branch gets the same input; their outputs merge. */
  fork(...branches: GraphBuilder[]): GraphBuilder {
    return new GraphBuilder([...this.steps, { type: 'fork', branches: branches.map((b) => b.expr()) }]);
  }

  expr(): ExprSpec {
    if (this.steps.length === 0) throw new Error('an empty graph');
    return this.steps.length === 1 ? this.steps[0] : { type: 'pipe', steps: this.steps };
  }

  toSpec(): GraphSpec {
    return { version: 1, root: this.expr() };
  }

  toString(): string {
    return printGraph(this.toSpec());
  }
}

export const graph = {
  /** A pipeline starting at a source. */
  source: (name: string, params: Record<string, Value> = {}, ...args: Value[]) =>
    new GraphBuilder([node(name, args, params)]),
  /** A branch for fork(): starts with a filter. */
  filter: (name: string, params: Record<string, Value> = {}, ...args: Value[]) =>
    new GraphBuilder([node(name, args, params)]),
  /** Several pipelines side by side (several sources): their outputs merge. */
  union: (...parts: GraphBuilder[]) => new GraphBuilder([{ type: 'fork', branches: parts.map((p) => p.expr()) }]),
};
