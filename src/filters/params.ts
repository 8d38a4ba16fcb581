/** Parameter helpers shared by filter schemas: durations, field paths, lists. */

import { z } from 'zod';
import { Lru } from '../util/lru.js';
import { MAX_TIMER_MS } from '../util/timer.js';
import type { GraphIssue } from './errors.js';
import { type FieldCatalog, fieldValues, lookupField } from './fields.js';
import { GRAPH_LIMITS } from './limits.js';
import type { SpecPath } from './spec.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const DURATION_HINT = 'a duration like 10s or 500ms (a bare number is milliseconds)';
const showInput = (v: unknown) => JSON.stringify(v) ?? String(v);

/**
 * "10s", "500ms", "2m", "1h", or a bare number: milliseconds; at most MAX_TIMER_MS (about 24.8 days, the
 * longest a timer waits: Node fires a longer one after 1 ms, and `poll=1000h` polled every millisecond).
 */
export const Duration = z
  .union([
    z.number({ error: (iss) => `expected ${DURATION_HINT}, got ${showInput(iss.input)}` }).nonnegative({
      error: (iss) => `expected ${DURATION_HINT}, got ${showInput(iss.input)}`,
    }),
    z
      .string()
      .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, { error: (iss) => `expected ${DURATION_HINT}, got ${showInput(iss.input)}` })
      .transform((s) => {
        const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s)!;
        return Number(m[1]) * UNITS[m[2]];
      }),
  ])
  .pipe(
    z.number().max(MAX_TIMER_MS, {
      error: (iss) =>
        `expected a duration of at most ${MAX_TIMER_MS} ms (596h: the longest a timer waits), got ${showInput(iss.input)} ms`,
    }),
  );

/** A window or period: a Duration above zero (a zero period would fire without end). */
export const Period = Duration.pipe(
  z.number().positive({
    error: (iss) =>
      `expected a period above zero like 10s or 500ms (a bare number is milliseconds), got ${showInput(iss.input)}`,
  }),
);

/** Longest field path (characters). */
export const MAX_FIELD_PATH = 256;

/** A dotted field path parameter, like `orig.src`. */
export const FieldPath = z
  .string()
  .max(MAX_FIELD_PATH, { error: `expected a field path of at most ${MAX_FIELD_PATH} characters` })
  .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, 'a field path like orig.src');

/** A list of field paths, at most GRAPH_LIMITS.fields of them (the work a filter does per record grows with it). */
export const FieldPaths = z
  .array(FieldPath)
  .max(GRAPH_LIMITS.fields, { error: `expected at most ${GRAPH_LIMITS.fields} field paths` });

/** One value or a list of them. */
export const listOf = <T extends z.ZodType>(t: T) =>
  z.union([t, z.array(t)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

/** Issues for field paths the input records cannot have. */
export function checkFields(paths: string[], cat: FieldCatalog, path: SpecPath, node: string): GraphIssue[] {
  return paths
    .filter((p) => !lookupField(cat, p))
    .map((p) => ({
      code: 'unknown_field',
      path,
      message: `${node}: no record reaching it has a field "${p}"${suggest(p, cat)}`,
    }));
}

function suggest(p: string, cat: FieldCatalog): string {
  const last = p.split('.').at(-1);
  const near = [...cat.keys()].filter((k) => k.split('.').at(-1) === last).slice(0, 3);
  return near.length ? ` (did you mean ${near.join(', ')}?)` : '';
}

/**
 * A reader for a dotted path, built once as its own generated function: no
 * string splitting per record, and fast property reads. Readers of one path
 * are one function, shared by every graph (the last READERS paths used): a
 * call site that several flows run (an aggregate's key) then calls one
 * target, which V8 inlines, where a reader per flow would make it megamorphic.
 */
export function pathGetter(path: string | string[]): (r: unknown) => unknown {
  const segs = typeof path === 'string' ? path.split('.') : path;
  return shared(`path ${JSON.stringify(segs)}`, () => new Function(`"use strict"; return ${readerSource(segs)};`)());
}

/** Shared readers, by what they read: the most recently used READERS whose text is at most READER_TEXT long. */
export const READERS = 1024;
export const READER_TEXT = 512;
const readers = new Lru<string, (r: unknown) => unknown>(READERS);

function shared(text: string, make: () => unknown): (r: unknown) => unknown {
  let f = readers.get(text);
  if (f === undefined) {
    f = make() as (r: unknown) => unknown;
    // Paths come from users' graphs: a long one gets a reader of its own, freed with its flow.
    if (text.length <= READER_TEXT) readers.set(text, f);
  }
  return f;
}

/** Source of an arrow reading `segs`: undefined as soon as a step is not an object. */
function readerSource(segs: string[]): string {
  const steps = segs.map(
    (k) => `if (o === null || typeof o !== "object") return undefined; o = o[${JSON.stringify(k)}];`,
  );
  return `(r) => { let o = r; ${steps.join(' ')} return o; }`;
}

/** Reads a dotted path from a record (prefer pathGetter in per-record code: it splits once). */
export function getPath(r: unknown, path: string): unknown {
  let cur = r;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/**
 * A grouping key reader for one or more fields, built once. One field gives
 * its value as is (a Map key without string conversion); several, a joined string.
 */
export function keyGetter(paths: string[]): (r: unknown) => unknown {
  if (paths.length === 0) return noKey;
  if (paths.length === 1) return pathGetter(paths[0]);
  return shared(`key ${JSON.stringify(paths)}`, () => {
    const gets = paths.map((p, i) => `const g${i} = ${readerSource(p.split('.'))};`);
    const joined = paths.map((_p, i) => `String(g${i}(r))`).join(' + "|" + ');
    return new Function(`"use strict"; ${gets.join(' ')} return (r) => ${joined};`)();
  });
}

const noKey = () => '';

/** A reader of every value at a path, flattening arrays on the way (for paths through lists; fieldValues). */
export function fieldValuesGetter(path: string): (r: unknown) => unknown[] {
  const segs = path.split('.');
  return (r) => fieldValues(r, segs);
}
