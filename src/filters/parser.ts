/**
 * The graph language (after FFPF): `A -> B` pipes, `A | B` forks (both get
 * the same input; outputs merge), parentheses group; `->` binds tighter
 * than `|`. Nodes are `name(arg, key=value, …)` or FFPF's `(name, arg, …)`.
 * `match(…)` takes an expression in a language of its own, kept as text.
 */
import { GraphSyntaxError } from './errors.js';
import { ExprSyntaxError, parseMatchExpr } from './expr/parse.js';
import { withRegexBudget } from './expr/regex.js';
import { Lexer, type Token, wordValue } from './lexer.js';

export { wordValue } from './lexer.js';

import { checkGraphText, GRAPH_LIMITS } from './limits.js';
import type { ExprSpec, GraphSpec, NodeSpec, Value } from './spec.js';

/** Nodes whose argument is raw expression text. */
export const RAW_NODES = new Set(['match']);

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

class Parser {
  private readonly lx: Lexer;
  private buf: Token[] = [];
  /** Open parentheses and brackets: recursion is bounded by GRAPH_LIMITS.depth, so no input can overflow the stack. */
  private depth = 0;

  constructor(private readonly src: string) {
    this.lx = new Lexer(src);
  }

  private peek(k = 0): Token {
    while (this.buf.length <= k) this.buf.push(this.lx.next());
    return this.buf[k];
  }
  private take(): Token {
    const t = this.peek();
    this.buf.shift();
    return t;
  }
  private fail(t: Token, reason: string): never {
    throw new GraphSyntaxError(reason, this.src, t);
  }
  private enter(t: Token): void {
    if (++this.depth > GRAPH_LIMITS.depth)
      this.fail(t, `nested more than ${GRAPH_LIMITS.depth} levels deep (limit depth=${GRAPH_LIMITS.depth})`);
  }
  private expect(kind: Token['kind'], what: string): Token {
    const t = this.take();
    if (t.kind !== kind) this.fail(t, `expected ${what}, got ${describe(t)}`);
    return t;
  }

  graph(): GraphSpec {
    if (this.peek().kind === 'eof') this.fail(this.peek(), 'empty graph');
    const root = this.alt();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(t, `expected "->", "|" or the end, got ${describe(t)}`);
    return { version: 1, root };
  }

  private alt(): ExprSpec {
    const branches = [this.pipe()];
    while (this.peek().kind === 'bar') {
      this.take();
      branches.push(this.pipe());
    }
    return branches.length === 1 ? branches[0] : { type: 'fork', branches };
  }

  private pipe(): ExprSpec {
    const steps = [this.term()];
    while (this.peek().kind === 'arrow') {
      this.take();
      steps.push(this.term());
    }
    return steps.length === 1 ? steps[0] : { type: 'pipe', steps };
  }

  private term(): ExprSpec {
    const t = this.peek();
    if (t.kind === 'lparen') {
      // FFPF tuple form "(name, arg, …)" versus a parenthesised group.
      const a = this.peek(1);
      const b = this.peek(2);
      if (a.kind === 'word' && NAME.test(a.text) && b.kind === 'comma') return this.tuple();
      this.enter(this.take());
      const inner = this.alt();
      this.expect('rparen', '")"');
      this.depth--;
      return inner;
    }
    if (t.kind === 'word') return this.node();
    return this.fail(t, `expected a source or filter, got ${describe(t)}`);
  }

  private tuple(): NodeSpec {
    this.take(); // (
    const name = this.take();
    const n: NodeSpec = { type: 'node', name: name.text, args: [], params: {} };
    while (this.peek().kind === 'comma') {
      this.take();
      this.arg(n);
    }
    this.expect('rparen', '")" closing the tuple');
    return n;
  }

  private node(): NodeSpec {
    const name = this.take();
    if (!NAME.test(name.text)) this.fail(name, `"${name.text}" is not a source or filter name`);
    const n: NodeSpec = { type: 'node', name: name.text, args: [], params: {} };
    if (this.peek().kind !== 'lparen') return n;
    this.take();
    if (RAW_NODES.has(n.name)) {
      if (this.buf.length > 0) this.fail(this.peek(), 'internal: lookahead before a raw argument');
      const raw = this.lx.rawUntilClose(name);
      const text = raw.text.trim();
      if (!text) this.fail(name, `${n.name}() needs an expression`);
      if (text.length > GRAPH_LIMITS.exprLength)
        this.fail(
          name,
          `${n.name}() expression of ${text.length} characters is above the limit of ${GRAPH_LIMITS.exprLength}`,
        );
      this.checkExpr(text, raw.offset + (raw.text.length - raw.text.trimStart().length));
      n.args.push(text);
      this.expect('rparen', '")"');
      return n;
    }
    if (this.peek().kind === 'rparen') {
      this.take();
      return n;
    }
    this.arg(n);
    while (this.peek().kind === 'comma') {
      this.take();
      this.arg(n);
    }
    this.expect('rparen', '"," or ")"');
    return n;
  }

  /** Parses a match() expression now, so its syntax errors point into the graph text (line, column, caret). */
  private checkExpr(text: string, start: number): void {
    try {
      parseMatchExpr(text);
    } catch (err) {
      if (!(err instanceof ExprSyntaxError)) throw err;
      throw new GraphSyntaxError(`match(): ${err.reason}`, this.src, positionAt(this.src, start + err.col - 1));
    }
  }

  private arg(n: NodeSpec): void {
    const t = this.peek();
    if (t.kind === 'word' && NAME.test(t.text) && this.peek(1).kind === 'eq') {
      this.take();
      this.take();
      if (Object.hasOwn(n.params, t.text)) this.fail(t, `parameter "${t.text}" given twice`);
      n.params[t.text] = this.value();
      return;
    }
    if (Object.keys(n.params).length > 0) this.fail(t, 'positional arguments must come before key=value ones');
    n.args.push(this.value());
  }

  private value(): Value {
    const t = this.take();
    if (t.kind === 'string') return t.text;
    if (t.kind === 'word') return wordValue(t.text);
    if (t.kind === 'lbrack') {
      this.enter(t);
      const items: Value[] = [];
      if (this.peek().kind !== 'rbrack') {
        items.push(this.value());
        while (this.peek().kind === 'comma') {
          this.take();
          items.push(this.value());
        }
      }
      this.expect('rbrack', '"," or "]"');
      this.depth--;
      return items;
    }
    return this.fail(t, `expected a value, got ${describe(t)}`);
  }
}

/** 1-based line and column of an offset into the graph text. */
export function positionAt(src: string, offset: number): { offset: number; line: number; col: number } {
  const at = Math.max(0, Math.min(offset, src.length));
  const before = src.slice(0, at);
  const line = before.split('\n').length;
  return { offset: at, line, col: at - (before.lastIndexOf('\n') + 1) + 1 };
}

function describe(t: Token): string {
  return t.kind === 'eof' ? 'the end' : JSON.stringify(t.text);
}

/** Parses graph text into a GraphSpec; throws GraphSyntaxError with line, column and a caret excerpt. */
export function parseGraph(text: string): GraphSpec {
  checkGraphText(text);
  return withRegexBudget(() => new Parser(text).graph());
}
