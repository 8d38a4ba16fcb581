/**
 * What populate() does with its input, for local and remote handles alike:
 * text is added (later text extends it); a built graph is kept as its text,
 * so text may extend it too; a GraphSpec is whole and final. A built graph
 * or a spec only populates a fresh flow, and nothing extends a spec.
 */
import { FlowgrabError } from '../errors.js';
import { GraphBuilder } from '../filters/builder.js';
import type { GraphSpec } from '../filters/spec.js';

export interface PopulatedGraph {
  text: string[];
  spec?: GraphSpec;
}

export function addToGraph(g: PopulatedGraph, input: string | GraphSpec | GraphBuilder<object>): void {
  const whole = input instanceof GraphBuilder ? 'a built graph' : typeof input === 'string' ? undefined : 'a GraphSpec';
  if (whole && (g.text.length || g.spec))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `${whole} replaces nothing: populate a fresh flow with it`);
  if (g.spec)
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      'this flow was populated with a GraphSpec; text cannot extend it',
    );
  if (input instanceof GraphBuilder) g.text.push(input.toString());
  else if (typeof input === 'string') g.text.push(input);
  else g.spec = input;
}
