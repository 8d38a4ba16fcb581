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

/**
 * What flowgrab's own checks call a problem with a graph (a custom Authorizer may use codes of its own).
 * `graph_limit`: over GRAPH_LIMITS; `bad_spec`: not a GraphSpec; the `*_denied` and `*_limit` ones and
 * `no_principal`, `order`, `mixed_sources`, `queue_reserved`: the policy (authorize).
 */
export type GraphIssueCode =
  | 'graph_limit'
  | 'bad_spec'
  | 'bad_parameter'
  | 'bad_expression'
  | 'unknown_node'
  | 'unknown_field'
  | 'source_with_input'
  | 'filter_without_input'
  | 'no_principal'
  | 'source_denied'
  | 'filter_denied'
  | 'param_denied'
  | 'capability_denied'
  | 'param_limit'
  | 'flow_limit'
  | 'buffer_limit'
  | 'order'
  | 'mixed_sources'
  | 'queue_reserved'
  | 'internal';

/** One problem with a graph that parsed: where in the spec, and a sentence. */
export interface GraphIssue {
  /** One of GraphIssueCode from flowgrab's checks (autocompleted); any string from a custom Authorizer. */
  code: GraphIssueCode | (string & {});
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

/** A value as a message shows it: strings quoted, long ones cut. */
export function showValue(v: unknown): string {
  const s = v === undefined ? 'nothing' : typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The subset of a zod issue these messages read (zod 4; `input` is there when parsed with reportInput). */
interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  expected?: string;
  values?: readonly unknown[];
  keys?: readonly string[];
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  errors?: ZodIssueLike[][];
}

const UNITS: Record<string, [string, string]> = {
  string: ['character', 'characters'],
  array: ['item', 'items'],
  set: ['item', 'items'],
};

/**
 * One parameter problem as a sentence saying what is expected, e.g.
 * `every: expected a duration like 10s or 500ms …, got "ten"` or `every is required`.
 * Messages a schema wrote itself (starting "expected" or "must") are kept.
 */
export function describeParamIssue(iss: ZodIssueLike, known?: readonly string[]): string {
  const at = pathText(iss.path);
  const where = prefix(iss.path);
  const got = `got ${showValue(iss.input)}`;
  if (iss.code === 'unrecognized_keys') {
    const keys = iss.keys ?? [];
    const list = keys.map((k) => JSON.stringify(k)).join(', ');
    const accepted = known?.length ? ` (it takes ${known.join(', ')})` : '';
    return `${where}unknown parameter${keys.length === 1 ? '' : 's'} ${list}${accepted}`;
  }
  if ((iss.code === 'invalid_type' || iss.code === 'invalid_union') && iss.input === undefined && 'input' in iss)
    return `${at || 'a value'} is required`;
  if (/^(expected|must) /.test(iss.message)) return `${where}${iss.message}`;
  switch (iss.code) {
    case 'invalid_type':
      return `${where}expected ${article(iss.expected ?? 'value')}, ${got}`;
    case 'invalid_value':
      return `${where}expected ${iss.values?.length === 1 ? showValue(iss.values[0]) : `one of ${(iss.values ?? []).map(String).join(', ')}`}, ${got}`;
    case 'too_small':
    case 'too_big': {
      const small = iss.code === 'too_small';
      const bound = Number(small ? iss.minimum : iss.maximum);
      const unit = UNITS[iss.origin ?? ''];
      if (unit) {
        const n = iss.inclusive === false ? (small ? bound + 1 : bound - 1) : bound;
        return `${where}expected ${small ? 'at least' : 'at most'} ${n} ${n === 1 ? unit[0] : unit[1]}`;
      }
      const rel = small
        ? iss.inclusive === false
          ? 'above'
          : 'at least'
        : iss.inclusive === false
          ? 'below'
          : 'at most';
      return `${where}expected a number ${rel} ${bound}, ${got}`;
    }
    case 'invalid_union':
      return unionMessage(iss);
    default:
      return `${where}${iss.message}`;
  }
}

/**
 * A union's failure said by the branch that came closest: `x | x[]` of an
 * enum given a word says "a list of …"; otherwise the branch whose type
 * matched and that got deepest into the value.
 */
function unionMessage(iss: ZodIssueLike): string {
  const branches = (iss.errors ?? []).filter((b) => b.length > 0);
  const rootType = (i: ZodIssueLike) => i.code === 'invalid_type' && i.path.length === 0;
  const listBranch = branches.some((b) => b.some((i) => rootType(i) && i.expected === 'array'));
  const enumIssue = branches.flat().find((i) => i.code === 'invalid_value' && i.path.length === 0 && i.values);
  if (listBranch && enumIssue && !Array.isArray(iss.input))
    return `${prefix(iss.path)}expected a list of ${(enumIssue.values ?? []).map(String).join(', ')}; got ${showValue(iss.input)}`;
  const score = (b: ZodIssueLike[]) => (b.some(rootType) ? 0 : 1000) + Math.max(...b.map((i) => i.path.length));
  const best = [...branches].sort((x, y) => score(y) - score(x))[0]?.[0];
  if (best && !rootType(best)) {
    const input = 'input' in best ? best.input : iss.input;
    return describeParamIssue({ ...best, input, path: [...iss.path, ...best.path] });
  }
  const custom = branches.flat().find((i) => rootType(i) && /^expected /.test(i.message));
  if (custom) return `${prefix(iss.path)}${custom.message}`;
  const types = [...new Set(branches.flat().flatMap((i) => (rootType(i) && i.expected ? [i.expected] : [])))];
  return types.length
    ? `${prefix(iss.path)}expected ${types.map(article).join(' or ')}, got ${showValue(iss.input)}`
    : `${prefix(iss.path)}${iss.message}, got ${showValue(iss.input)}`;
}

/** `events[1]: ` for a path, nothing for the root. */
function prefix(path: readonly PropertyKey[]): string {
  const at = pathText(path);
  return at ? `${at}: ` : '';
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');
}

function article(t: string): string {
  return t === 'array' ? 'a list' : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

/** Edit distance (a swap of two neighbours counts as one edit), both strings cut to 64 characters (names are short; the input may not be). */
export function editDistance(a: string, b: string): number {
  const s = a.slice(0, 64);
  const t = b.slice(0, 64);
  let older: number[] = [];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) cur[j] = Math.min(cur[j], older[j - 2] + 1);
    }
    older = prev;
    prev = cur;
  }
  return prev[t.length];
}

/** The closest of `names` to `name` (at most a third of its length away, and at most 3 edits), if any. */
export function closestName(name: string, names: Iterable<string>): string | undefined {
  if (name.length > 64) return undefined;
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestD = limit + 1;
  for (const n of names) {
    if (n.length > 64) continue;
    const d = editDistance(name.toLowerCase(), n.toLowerCase());
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best;
}
