/** project(fields…): keeps the named paths in their nesting, plus type and ts: project(orig.dst) → {type, ts, orig: {dst}}. */
import { z } from 'zod';
import type { FieldCatalog } from '../fields.js';
import { checkFields, FieldPaths } from '../params.js';
import { defineFilter, type Rec } from '../registry.js';
import { mapStep } from './pure.js';

const ALWAYS = ['type', 'ts'];

/** Reads one segment; `__proto__` only as a record's own field, never its prototype. */
function seg(o: unknown, k: string): unknown {
  if (o === null || typeof o !== 'object') return undefined;
  return k === '__proto__' && !Object.hasOwn(o, k) ? undefined : (o as Rec)[k];
}

/** Sets an own field (`__proto__` included: assigning it would replace the prototype). */
function put(o: Rec, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

/**
 * The paths that matter: duplicates and paths inside another path (project(orig, orig.src)) add nothing. Each
 * path looks up its own prefixes in a set: linear in the text, where comparing every pair was quadratic.
 */
function essential(paths: string[][]): string[][] {
  const texts = new Set(paths.map((p) => p.join('.')));
  const seen = new Set<string>();
  return paths.filter((p) => {
    const t = p.join('.');
    if (seen.has(t)) return false;
    seen.add(t);
    for (let i = 1; i < p.length; i++) if (texts.has(p.slice(0, i).join('.'))) return false;
    return true;
  });
}

/** The reference: copies each path that has a value, creating the nesting on the way. */
export function projectRecord(r: Rec, paths: string[][]): Rec {
  return projectEssential(r, essential(paths));
}

/** projectRecord over paths already essential (a projector's, made once: not again per record). */
function projectEssential(r: Rec, paths: string[][]): Rec {
  const out: Rec = {};
  for (const path of paths) {
    let v: unknown = r;
    for (const k of path) v = seg(v, k);
    if (v === undefined) continue;
    let o = out;
    for (let i = 0; i < path.length - 1; i++) {
      if (!Object.hasOwn(o, path[i])) put(o, path[i], {});
      o = o[path[i]] as Rec;
    }
    put(o, path[path.length - 1], v);
  }
  return out;
}

type Tree = Map<string, Tree | string>;

/**
 * Builds a projection once, as one generated function: every value is read
 * into a local (each intermediate object once), and when all are present the
 * output is a single object literal: one allocation per level, no closures,
 * no arrays. A record missing a value takes projectRecord, so the output is
 * always the same as projectRecord's, key order included.
 */
export function projector(paths: string[][]): (r: Rec) => Rec {
  const uniq = essential(paths);
  const slow = (r: Rec) => projectEssential(r, uniq);
  if (uniq.length === 0) return slow;
  const key = (k: string) => JSON.stringify(k);
  const read = (o: string, k: string) =>
    k === '__proto__'
      ? `(${o} !== null && typeof ${o} === "object" && Object.hasOwn(${o}, "__proto__") ? ${o}.__proto__ : undefined)`
      : `(${o} !== null && typeof ${o} === "object" ? ${o}[${key(k)}] : undefined)`;
  const lines: string[] = [];
  const present: string[] = [];
  let n = 0;
  // The literal mirrors the reads: a tree in first-appearance order, as projectRecord inserts keys.
  const tree: Tree = new Map();
  const objs = new Map<string, string>([['', 'r']]);
  for (const path of uniq) {
    let at = tree;
    for (let i = 0; i < path.length - 1; i++) {
      const prefix = path.slice(0, i + 1).join('.');
      if (!objs.has(prefix)) {
        const o = `o${n++}`;
        lines.push(`const ${o} = ${read(objs.get(path.slice(0, i).join('.'))!, path[i])};`);
        objs.set(prefix, o);
      }
      let sub = at.get(path[i]);
      if (!(sub instanceof Map)) at.set(path[i], (sub = new Map()));
      at = sub;
    }
    const v = `v${n++}`;
    lines.push(`const ${v} = ${read(objs.get(path.slice(0, -1).join('.'))!, path[path.length - 1])};`);
    present.push(`${v} !== undefined`);
    at.set(path[path.length - 1], v);
  }
  // `__proto__` as a plain literal key would set the prototype: a computed key defines a field.
  const lit = (t: Tree): string =>
    `{${[...t].map(([k, x]) => `${k === '__proto__' ? `[${key(k)}]` : key(k)}: ${typeof x === 'string' ? x : lit(x)}`).join(', ')}}`;
  lines.push(`if (${present.join(' && ')}) return ${lit(tree)};`, 'return S(r);');
  return new Function('S', `"use strict"; return (r) => {\n${lines.join('\n')}\n};`)(slow) as (r: Rec) => Rec;
}

/**
 * The paths a projection keeps, as a borrower would read them (see PureStep.kept); none through `__proto__`,
 * which a projection copies only as an own field and a reader would take from the prototype.
 */
function keptPaths(paths: string[][]): string[] | undefined {
  const uniq = essential(paths);
  return uniq.some((p) => p.includes('__proto__')) ? undefined : uniq.map((p) => p.join('.'));
}

export const projectFilter = defineFilter({
  name: 'project',
  description: 'keep only the named fields (and type, ts): project(orig.src, orig.dst)',
  params: z.object({ fields: FieldPaths.min(1) }).strict(),
  positional: (args) => ({ fields: args }),
  check: (p, ctx) => checkFields(p.fields, ctx.input, ctx.path, 'project'),
  output: (input, p) => {
    const keep = [...ALWAYS, ...p.fields];
    const out: FieldCatalog = new Map();
    for (const [k, v] of input) {
      if (keep.some((f) => k === f || k.startsWith(`${f}.`) || f.startsWith(`${k}.`))) out.set(k, v);
    }
    return out;
  },
  step: (p) => {
    const paths = [...ALWAYS, ...p.fields.filter((f) => !ALWAYS.includes(f))].map((f) => f.split('.'));
    const step = mapStep(projector(paths));
    step.kept = keptPaths(paths);
    return step;
  },
});
