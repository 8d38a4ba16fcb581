/** Tokens of the graph language, with line and column for error messages. */
import { GraphSyntaxError } from './errors.js';

export type TokenKind =
  | 'arrow'
  | 'bar'
  | 'lparen'
  | 'rparen'
  | 'lbrack'
  | 'rbrack'
  | 'comma'
  | 'eq'
  | 'word'
  | 'string'
  | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  /** Offset into the source, and 1-based line and column. */
  offset: number;
  line: number;
  col: number;
}

const PUNCT: Record<string, TokenKind> = {
  '|': 'bar',
  '(': 'lparen',
  ')': 'rparen',
  '[': 'lbrack',
  ']': 'rbrack',
  ',': 'comma',
  '=': 'eq',
};
/** Characters of bare words: names, field paths, numbers, durations, IPv4/IPv6 addresses and CIDRs, netns names. */
export const WORD_CHARS = 'A-Za-z0-9_.:/*+-';
const WORD = new RegExp(`[${WORD_CHARS}]`);

/** The value of a bare word: a boolean, a number (decimal or 0x), else the word itself. */
export function wordValue(text: string): boolean | number | string {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^[-+]?(\d|\.\d)/.test(text) || /^0x[0-9a-f]+$/i.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return text;
}

export class Lexer {
  private i = 0;
  private line = 1;
  private lineStart = 0;

  constructor(readonly src: string) {}

  position(offset = this.i): { offset: number; line: number; col: number } {
    return { offset, line: this.line, col: offset - this.lineStart + 1 };
  }

  private skipSpace(): void {
    while (this.i < this.src.length) {
      const c = this.src[this.i];
      if (c === '\n') {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (c === '#') while (this.i < this.src.length && this.src[this.i] !== '\n') this.i++;
      else break;
    }
  }

  next(): Token {
    this.skipSpace();
    const start = this.position();
    const s = this.src;
    if (this.i >= s.length) return { kind: 'eof', text: '', ...start };
    const c = s[this.i];
    if (c === '-' && s[this.i + 1] === '>') {
      this.i += 2;
      return { kind: 'arrow', text: '->', ...start };
    }
    if (PUNCT[c]) {
      this.i++;
      return { kind: PUNCT[c], text: c, ...start };
    }
    if (c === '"' || c === "'") return this.string(c, start);
    if (WORD.test(c)) {
      let j = this.i;
      while (j < s.length && WORD.test(s[j]) && !(s[j] === '-' && s[j + 1] === '>')) j++;
      const text = s.slice(this.i, j);
      this.i = j;
      return { kind: 'word', text, ...start };
    }
    throw new GraphSyntaxError(`unexpected character ${JSON.stringify(c)}`, s, start);
  }

  private string(quote: string, start: ReturnType<Lexer['position']>): Token {
    let out = '';
    let j = this.i + 1;
    for (;;) {
      if (j >= this.src.length || this.src[j] === '\n')
        throw new GraphSyntaxError('unterminated string', this.src, start);
      const c = this.src[j];
      if (c === quote) break;
      if (c === '\\' && j + 1 < this.src.length) {
        const e = this.src[j + 1];
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        j += 2;
        continue;
      }
      out += c;
      j++;
    }
    this.i = j + 1;
    return { kind: 'string', text: out, ...start };
  }

  /**
   * Raw text up to the parenthesis that closes the one just consumed, for
   * arguments in a language of their own (match expressions). Strings,
   * regex literals and nested brackets are skipped over as units.
   */
  rawUntilClose(opener: { offset: number; line: number; col: number }): { text: string; offset: number } {
    const begin = this.i;
    let depth = 0;
    const s = this.src;
    // The last character that was not white space: a `/` after `~` opens a regex. (Tracked, not
    // searched for again at every `/`, which made a long expression quadratic.)
    let lastSolid = '';
    for (let j = this.i; j < s.length; j++) {
      const c = s[j];
      if (c === '\n') {
        this.line++;
        this.lineStart = j + 1;
      }
      const after = lastSolid;
      if (c !== ' ' && c !== '\t' && c !== '\r' && c !== '\n') lastSolid = c;
      if (c === '"' || c === "'") {
        j++;
        while (j < s.length && s[j] !== c) j += s[j] === '\\' ? 2 : 1;
      } else if (c === '/' && after === '~') {
        j++;
        while (j < s.length && s[j] !== '/') j += s[j] === '\\' ? 2 : 1;
      } else if (c === '(' || c === '[') depth++;
      else if (c === ']') depth--;
      else if (c === ')') {
        if (depth === 0) {
          this.i = j;
          return { text: s.slice(begin, j), offset: begin };
        }
        depth--;
      }
    }
    throw new GraphSyntaxError('missing ")" to close the expression', s, opener);
  }
}
