/** GraphSpec → canonical text; parseGraph(printGraph(g)) equals g. */
import { WORD_CHARS } from './lexer.js';
import { RAW_NODES, wordValue } from './parser.js';
import type { ExprSpec, GraphSpec, NodeSpec, Value } from './spec.js';

/** Only the lexer's word characters. */
const WORD_ONLY = new RegExp(`^[${WORD_CHARS}]+$`);

/**
 * True when `s` reads back as itself written bare: one word of the lexer (its characters only, no `->`, at
 * which a word ends) that is not a number or a boolean. A test, not a lexer run: the lexer threw on every
 * other string, and a spec of 16 000 such values took 100 ms to print.
 */
function bare(s: string): boolean {
  return WORD_ONLY.test(s) && !s.includes('->') && wordValue(s) === s;
}

export function printValue(v: Value): string {
  if (Array.isArray(v)) return `[${v.map(printValue).join(', ')}]`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'boolean') return String(v);
  if (bare(v)) return v;
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

function printNode(n: NodeSpec): string {
  if (
    RAW_NODES.has(n.name) &&
    n.args.length === 1 &&
    typeof n.args[0] === 'string' &&
    Object.keys(n.params).length === 0
  ) {
    return `${n.name}(${n.args[0]})`;
  }
  const parts = [...n.args.map(printValue), ...Object.entries(n.params).map(([k, v]) => `${k}=${printValue(v)}`)];
  return `${n.name}(${parts.join(', ')})`;
}

function print(e: ExprSpec, ctx: 'top' | 'pipe' | 'fork'): string {
  if (e.type === 'node') return printNode(e);
  if (e.type === 'pipe') {
    const s = e.steps.map((x) => print(x, 'pipe')).join(' -> ');
    return ctx === 'pipe' ? `(${s})` : s;
  }
  const s = e.branches.map((x) => print(x, 'fork')).join(' | ');
  return ctx === 'top' ? s : `(${s})`;
}

/** The text form of a GraphSpec; parseGraph(printGraph(g)) gives g back. */
export function printGraph(g: GraphSpec): string {
  return print(g.root, 'top');
}
