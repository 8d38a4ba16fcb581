/**
 * Match expression syntax: field paths, == != < <= > >=, `in [..]`,
 * `in CIDR` (IPv4 and IPv6), `~ /regex/flags`, && || !, parentheses.
 * A field alone tests truthiness. The left side is always a field.
 */
import { FlowgrabError } from '../../errors.js';
import { canonicalIP } from '../../netlink/ip.js';
import { isPrefix } from '../../netlink/prefix.js';
import { excerpt } from '../errors.js';
import { wordValue } from '../lexer.js';
import { GRAPH_LIMITS } from '../limits.js';
import type { CmpOp, Literal, MatchExpr } from './ast.js';
import { compileRegex } from './regex.js';

export class ExprSyntaxError extends FlowgrabError {
  readonly col: number;
  /** The sentence without position or excerpt (the graph parser re-places it in the graph text). */
  readonly reason: string;
  constructor(reason: string, src: string, col: number) {
    super('FG_ERR_GRAPH', `match expression, column ${col}: ${reason}\n${excerpt(src, 1, col)}`, { op: 'parse' });
    this.col = col;
    this.reason = reason;
  }
}

type Tok = { k: 'op' | 'word' | 'string' | 'regex' | 'eof'; t: string; flags?: string; col: number };

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const OPS = ['&&', '||', '!=', '==', '<=', '>=', '<', '>', '!', '~', '(', ')', '[', ']', ','];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const col = i + 1;
    if (c === '/' && out.at(-1)?.t === '~') {
      let j = i + 1;
      let body = '';
      while (j < src.length && src[j] !== '/') {
        body += src[j] === '\\' ? src[j] + (src[j + 1] ?? '') : src[j];
        j += src[j] === '\\' ? 2 : 1;
      }
      if (j >= src.length) throw new ExprSyntaxError('unterminated regular expression', src, col);
      let flags = '';
      j++;
      while (j < src.length && /[a-z]/.test(src[j])) flags += src[j++];
      out.push({ k: 'regex', t: body, flags, col });
      i = j;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        s += src[j] === '\\' ? (src[j + 1] ?? '') : src[j];
        j += src[j] === '\\' ? 2 : 1;
      }
      if (j >= src.length) throw new ExprSyntaxError('unterminated string', src, col);
      out.push({ k: 'string', t: s, col });
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ k: 'op', t: op, col });
      i += op.length;
      continue;
    }
    const m = /^[A-Za-z0-9_.:/+-]+/.exec(src.slice(i));
    if (!m) throw new ExprSyntaxError(`unexpected character ${JSON.stringify(c)}`, src, col);
    out.push({ k: 'word', t: m[0], col });
    i += m[0].length;
  }
  out.push({ k: 'eof', t: '', col: src.length + 1 });
  return out;
}

/** Canonical text of an IP literal so `==` compares like the records print. */
function literal(tok: Tok): Literal {
  if (tok.k === 'string') return tok.t;
  const v = wordValue(tok.t);
  if (typeof v === 'string') return canonicalIP(v) ?? v;
  return v as Literal;
}

export function parseMatchExpr(src: string): MatchExpr {
  if (src.length > GRAPH_LIMITS.exprLength)
    throw new ExprSyntaxError(
      `expression of ${src.length} characters is above the limit of ${GRAPH_LIMITS.exprLength}`,
      src,
      1,
    );
  const toks = lex(src);
  let p = 0;
  // `!` and `(` recurse: bounded, so no expression can overflow the stack.
  let depth = 0;
  const enter = (t: Tok) => {
    if (++depth > GRAPH_LIMITS.depth) fail(t, `nested more than ${GRAPH_LIMITS.depth} levels deep`);
  };
  const peek = () => toks[p];
  const take = () => toks[p++];
  const fail = (t: Tok, why: string): never => {
    throw new ExprSyntaxError(why, src, t.col);
  };
  const isOp = (t: Tok, o: string) => t.k === 'op' && t.t === o;

  function or(): MatchExpr {
    let e = and();
    while (isOp(peek(), '||')) {
      take();
      e = { op: 'or', left: e, right: and() };
    }
    return e;
  }
  function and(): MatchExpr {
    let e = unary();
    while (isOp(peek(), '&&')) {
      take();
      e = { op: 'and', left: e, right: unary() };
    }
    return e;
  }
  function unary(): MatchExpr {
    const t = peek();
    if (isOp(t, '!')) {
      enter(take());
      const arg = unary();
      depth--;
      return { op: 'not', arg };
    }
    if (isOp(t, '(')) {
      enter(take());
      const e = or();
      if (!isOp(take(), ')')) fail(toks[p - 1], 'expected ")"');
      depth--;
      return e;
    }
    return predicate();
  }
  function value(): Literal {
    const t = take();
    if (t.k !== 'word' && t.k !== 'string') fail(t, `expected a value, got ${t.t ? JSON.stringify(t.t) : 'the end'}`);
    return literal(t);
  }
  function predicate(): MatchExpr {
    const f = take();
    if (f.k !== 'word' || !FIELD.test(f.t))
      fail(f, `expected a field name, got ${f.t ? JSON.stringify(f.t) : 'the end'}`);
    const field = f.t;
    const t = peek();
    if (t.k === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.t)) {
      take();
      return { op: 'cmp', cmp: t.t as CmpOp, field, value: value() };
    }
    if (t.k === 'word' && t.t === 'in') {
      take();
      const n = peek();
      if (isOp(n, '[')) {
        take();
        const values: Literal[] = [];
        if (!isOp(peek(), ']')) {
          values.push(value());
          while (isOp(peek(), ',')) {
            take();
            values.push(value());
          }
        }
        if (!isOp(take(), ']')) fail(toks[p - 1], 'expected "," or "]"');
        return { op: 'in', field, values };
      }
      const c = take();
      if (c.k !== 'word' || !isPrefix(c.t)) fail(c, 'expected [list] or an address prefix like 10.0.0.0/8');
      return { op: 'cidr', field, cidr: c.t };
    }
    if (isOp(t, '~')) {
      take();
      const r = take();
      if (r.k !== 'regex') fail(r, 'expected /regex/ after ~');
      try {
        compileRegex(r.t, (r.flags ?? '').replace(/[gy]/g, ''));
      } catch (err) {
        fail(r, `bad regular expression: ${(err as Error).message}`);
      }
      return { op: 'regex', field, source: r.t, flags: (r.flags ?? '').replace(/[gy]/g, '') };
    }
    return { op: 'truthy', field };
  }

  const e = or();
  if (peek().k !== 'eof') fail(peek(), `unexpected ${JSON.stringify(peek().t)}`);
  return e;
}
