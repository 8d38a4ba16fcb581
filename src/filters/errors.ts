/** Parse errors with line, column and a caret excerpt, like a compiler's. */
import { FlowgrabError } from '../errors.js';

export function excerpt(src: string, line: number, col: number): string {
  const text = src.split('\n')[line - 1] ?? '';
  return `  ${text}\n  ${' '.repeat(Math.max(0, col - 1))}^`;
}

export class GraphSyntaxError extends FlowgrabError {
  readonly line: number;
  readonly col: number;
  readonly offset: number;
  readonly reason: string;
  constructor(reason: string, src: string, pos: { offset: number; line: number; col: number }) {
    super('FG_ERR_GRAPH', `line ${pos.line}, column ${pos.col}: ${reason}\n${excerpt(src, pos.line, pos.col)}`, {
      op: 'parse',
    });
    this.line = pos.line;
    this.col = pos.col;
    this.offset = pos.offset;
    this.reason = reason;
  }
}

/** One problem with a graph that parsed: where in the spec, and a sentence. */
export interface GraphIssue {
  code: string;
  path: (string | number)[];
  message: string;
}

export class GraphError extends FlowgrabError {
  readonly issues: GraphIssue[];
  constructor(issues: GraphIssue[], what = 'graph') {
    super('FG_ERR_GRAPH', `${what}: ${issues.map((i) => i.message).join('; ')}`, { op: 'validate' });
    this.issues = issues;
  }
}
