/**
 * Field catalogs: which dotted paths a record can have, and of what kind,
 * read from the record's zod schema. A match on a path no record of the
 * source can have is an error at instantiate, not a silent `false`.
 */
import type { z } from 'zod';

/** The type of a field in a record, as the graph checker knows it. */
export type FieldKind = 'string' | 'number' | 'boolean' | 'object' | 'any';

/** What the graph checker knows of one field path. */
export interface FieldInfo {
  /** Its value's type. */
  kind: FieldKind;
  /** The path passes through an array (e.g. `resolved.ip`): it has many values per record. */
  many: boolean;
}

/** The fields records can have, by dotted path (`orig.src`): what `match`, `project` and the aggregates are checked against. */
export type FieldCatalog = Map<string, FieldInfo>;

interface Def {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
  getter?: () => { _zod: { def: Def } };
  values?: unknown[];
}

function walk(def: Def, path: string, many: boolean, out: FieldCatalog, depth: number): void {
  if (depth > 8) return;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      walk(def.innerType!._zod.def, path, many, out, depth);
      return;
    case 'lazy':
      walk(def.getter!()._zod.def, path, many, out, depth + 1);
      return;
    case 'array':
      walk(def.element!._zod.def, path, true, out, depth);
      return;
    case 'object':
      if (path) out.set(path, { kind: 'object', many });
      for (const [k, v] of Object.entries(def.shape ?? {}))
        walk(v._zod.def, path ? `${path}.${k}` : k, many, out, depth + 1);
      return;
    case 'string':
    case 'enum':
      out.set(path, { kind: 'string', many });
      return;
    case 'number':
    case 'int':
      out.set(path, { kind: 'number', many });
      return;
    case 'boolean':
      out.set(path, { kind: 'boolean', many });
      return;
    case 'literal': {
      const v = def.values?.[0];
      out.set(path, { kind: typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : 'string', many });
      return;
    }
    default:
      out.set(path, { kind: 'any', many });
  }
}

export function catalogOf(schema: z.ZodType): FieldCatalog {
  const out: FieldCatalog = new Map();
  walk((schema as unknown as { _zod: { def: Def } })._zod.def, '', false, out, 0);
  return out;
}

/** A catalog that accepts any path: for records whose shape is not known in advance. */
export const ANY_FIELDS: FieldCatalog = new Map();

export function lookupField(cat: FieldCatalog, path: string): FieldInfo | undefined {
  if (cat === ANY_FIELDS) return { kind: 'any', many: false };
  return cat.get(path);
}

/**
 * Values at `path` in `r`, flattening arrays on the way (for paths marked `many`); lists inside the values at the
 * end are flattened once more. Elements are appended one by one: a spread of a list of 200 000 (one record from
 * nats or replay) overflowed the stack.
 */
export function fieldValues(r: unknown, path: readonly string[]): unknown[] {
  let cur: unknown[] = [r];
  for (const seg of path) {
    const next: unknown[] = [];
    for (const c of cur) {
      const v = c !== null && typeof c === 'object' ? (c as Record<string, unknown>)[seg] : undefined;
      if (Array.isArray(v)) for (const x of v) next.push(x);
      else if (v !== undefined) next.push(v);
    }
    if (next.length === 0) return next;
    cur = next;
  }
  if (!cur.some(Array.isArray)) return cur;
  const out: unknown[] = [];
  for (const v of cur) {
    if (Array.isArray(v)) for (const x of v) out.push(x);
    else out.push(v);
  }
  return out;
}
