/**
 * FFPF ordering rules, checked in one pass over the graph (a dataflow
 * analysis), never by listing paths: n nested forks have 2^n paths but
 * only O(n) nodes, and each node is visited once per direction.
 *
 * Forward facts, per point of the graph, hold on EVERY path from a source
 * to that point: the filters that were passed (`names`) and the fields that
 * were anonymized (`anon`); where branches merge, facts intersect. Also
 * carried: the identifying fields that MAY still be in the records
 * (`present`, a union). A source starts afresh.
 *
 * "F requires R before it" holds at a node F when:
 * - R is `anonymize`: every field that reaches the output through F is
 *   anonymized on every path to F. Through `project(a, b)` those are a and b;
 *   through count/sum/top their `by` fields (and `field`); through any other
 *   filter the whole record, i.e. every identifying field that may be
 *   present (addresses, DNS answers, enrich's names). `type` and `ts` are not
 *   data and never need it; a redacted field counts as anonymized. So
 *   `anonymize(proto) -> project(orig.src)` fails.
 * - any other R: R is on every path from a source to F.
 * "F requires R after it" holds when R is on every path from F to the output
 * (backward facts, intersected where a fork splits).
 */
import type { GraphIssue } from '../filters/errors.js';
import { ANY_FIELDS } from '../filters/fields.js';
import { ADDRESS_FIELDS, addressMirrors } from '../filters/lib/scope.js';
import { lookupNode } from '../filters/registry.js';
import type { ExprSpec, NodeSpec, SpecPath } from '../filters/spec.js';
import { nodeParams } from './params.js';
import type { OrderRule } from './policy.js';

export const IDENTIFYING_FIELDS = [...ADDRESS_FIELDS, 'answers.data', 'names'];
const NOT_DATA = new Set(['type', 'ts']);

interface Facts {
  names: Set<string>;
  anon: Set<string>;
  present: Set<string>;
}

const list = (v: unknown): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));
const inter = <T>(a: Set<T>, b: Set<T>) => new Set([...a].filter((x) => b.has(x)));

/** Fields a filter passes on as values of its input; undefined = the whole record. */
function exposedFields(n: NodeSpec): string[] | undefined {
  const p = nodeParams(n);
  switch (n.name) {
    case 'project':
      return list(p.fields);
    case 'count':
      return list(p.by);
    case 'sum':
    case 'top':
      return [...list(p.by), ...list(p.field)];
    default:
      return undefined;
  }
}

function sourceFacts(n: NodeSpec): Facts {
  const def = lookupNode(n.name);
  const cat = def?.kind === 'source' ? def.fields : undefined;
  // A catalog computed from parameters (replay reads its file) is not consulted here: assume every field.
  const known = cat instanceof Map && cat !== ANY_FIELDS ? cat : undefined;
  return {
    names: new Set(),
    anon: new Set(),
    present: new Set(IDENTIFYING_FIELDS.filter((f) => !known || known.has(f))),
  };
}

function transfer(n: NodeSpec, f: Facts): Facts {
  if (lookupNode(n.name)?.kind === 'source') return sourceFacts(n);
  const names = new Set(f.names).add(n.name);
  let { anon, present } = f;
  const p = nodeParams(n);
  if (n.name === 'anonymize') anon = new Set([...anon, ...list(p.fields)]);
  if (n.name === 'redact') {
    const gone = new Set(list(p.fields).flatMap((x) => [x, ...addressMirrors(x)]));
    present = new Set([...present].filter((x) => !gone.has(x) && ![...gone].some((g) => x.startsWith(`${g}.`))));
    anon = new Set([...anon, ...gone]); // removed is at least as good as anonymized
  }
  if (n.name === 'enrich') present = new Set(present).add('names');
  const exposed = exposedFields(n);
  if (exposed) present = new Set([...present].filter((x) => exposed.some((e) => x === e || x.startsWith(`${e}.`))));
  return { names, anon, present };
}

/** Whether `field` is anonymized: named by an anonymize (or redact) on every path, itself or a field it lies under. */
function anonymized(anon: Set<string>, field: string): boolean {
  for (let at = field.length; at > 0; at = field.lastIndexOf('.', at - 1))
    if (anon.has(field.slice(0, at))) return true;
  return false;
}

/** What a rule finds wrong at node `n` given the facts reaching it, or undefined. */
function violation(rule: OrderRule, n: NodeSpec, f: Facts): string | undefined {
  if (rule.requires !== 'anonymize')
    return f.names.has(rule.requires) ? undefined : `\`${rule.requires}\` is not on every path before it`;
  const exposed = exposedFields(n);
  const need = exposed ? exposed.filter((x) => !NOT_DATA.has(x)) : [...f.present];
  // anonymize(orig) rewrites every string under orig (and through lists): orig.src is anonymized by it too.
  const missing = need.filter((x) => !anonymized(f.anon, x));
  return missing.length
    ? `${missing.join(', ')} reach${missing.length === 1 ? 'es' : ''} it not anonymized on every path`
    : undefined;
}

export interface OrderResult {
  issues: GraphIssue[];
  /** Graph elements visited (both directions): linear in the graph's size. */
  visits: number;
}

/** Checks every ordering rule at every node; the graph must be within GRAPH_LIMITS (recursion depth). */
export function checkOrder(rules: OrderRule[], root: ExprSpec): OrderResult {
  const issues: GraphIssue[] = [];
  let visits = 0;
  if (rules.length === 0) return { issues, visits };
  const report = (rule: OrderRule, path: SpecPath, why: string | undefined) => {
    if (why)
      issues.push({
        code: 'order',
        path,
        message: `filter \`${rule.filter}\` needs \`${rule.requires}\` ${rule.position} it: ${why}`,
      });
  };
  const before = rules.filter((r) => r.position === 'before');
  const after = rules.filter((r) => r.position === 'after');

  const forward = (e: ExprSpec, path: SpecPath, f: Facts): Facts => {
    visits++;
    if (e.type === 'node') {
      for (const r of before) if (r.filter === e.name) report(r, path, violation(r, e, f));
      return transfer(e, f);
    }
    if (e.type === 'pipe') return e.steps.reduce((acc, s, i) => forward(s, [...path, 'steps', i], acc), f);
    const outs = e.branches.map((b, i) => forward(b, [...path, 'branches', i], f));
    return outs.reduce((a, b) => ({
      names: inter(a.names, b.names),
      anon: inter(a.anon, b.anon),
      present: new Set([...a.present, ...b.present]),
    }));
  };
  // Before the first source nothing is known; a graph always starts with one, which resets the facts.
  forward(root, ['root'], { names: new Set(), anon: new Set(), present: new Set(IDENTIFYING_FIELDS) });

  // Backward: names on every path from a point to the output.
  const backward = (e: ExprSpec, path: SpecPath, after_: Set<string>): Set<string> => {
    visits++;
    if (e.type === 'node') {
      for (const r of after)
        if (r.filter === e.name)
          report(r, path, after_.has(r.requires) ? undefined : `\`${r.requires}\` is not on every path after it`);
      return new Set(after_).add(e.name);
    }
    if (e.type === 'pipe') {
      let acc = after_;
      for (let i = e.steps.length - 1; i >= 0; i--) acc = backward(e.steps[i], [...path, 'steps', i], acc);
      return acc;
    }
    return e.branches.map((b, i) => backward(b, [...path, 'branches', i], after_)).reduce(inter);
  };
  if (after.length) backward(root, ['root'], new Set());
  return { issues, visits };
}
