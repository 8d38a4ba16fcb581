/**
 * Windowed aggregates: count(by, every), sum(field, by, every),
 * top(by, n, every[, field]) and window(every). Windows are in event time
 * (the records' `ts`, see windowed.ts), aligned to `every`, and take an
 * allowed `lateness` (default 2s, at most 5m). Grouped outputs keep the
 * grouping fields at their paths, so later filters can match on them:
 * count(by=orig.src) → {type: 'count', ts, start, end, orig: {src}, count}.
 */
import { z } from 'zod';
import type { FieldCatalog, FieldInfo } from '../fields.js';
import { GRAPH_LIMITS } from '../limits.js';
import { checkFields, Duration, FieldPath, keyGetter, listOf, Period, pathGetter } from '../params.js';
import { type BuildContext, defineFilter, type Rec, type Stepper } from '../registry.js';
import { sharedInterner } from './keys.js';
import { projector } from './project.js';
import { borrowers } from './pure.js';
import { DEFAULT_LATENESS_MS, MAX_LATENESS_MS, windowed } from './windowed.js';

const By = listOf(z.string()).pipe(z.array(FieldPath));

/** How late (behind the newest record's ts) a record may come and still join its window. */
const Lateness = Duration.pipe(
  z.number().max(MAX_LATENESS_MS, { error: `expected a lateness of at most ${MAX_LATENESS_MS / 60_000}m` }),
).default(DEFAULT_LATENESS_MS);

interface Group {
  sample: Rec;
  count: number;
  sum: number;
}

/** A window's groups: by key (in order of first record), and by interned key number (see keys.ts). */
interface Groups {
  map: Map<unknown, Group>;
  /** Groups by key number, for the interner's generation `gen`; absent past the fold's slotted windows. */
  slots?: (Group | undefined)[];
  gen: number;
}

/** Windows per aggregate that also index their groups by key number (each such array holds up to INTERNED_KEYS). */
const SLOTTED_WINDOWS = 4;

/** Groups per window are bounded (GRAPH_LIMITS.stateKeys): records of new keys past it are dropped and counted. */
function fold(by: string[], ctx: BuildContext, field?: string) {
  const key = keyGetter(by);
  const sample = projector(by.map((b) => b.split('.')));
  const value = field ? pathGetter(field) : undefined;
  const interner = sharedInterner(ctx.input, by);
  let slotted = 0;
  // One entry per key per window; per record, one array read once the key is interned (and no allocation).
  const entry = (g: Groups, r: Rec): Group | undefined => {
    const k = key(r);
    const slots = g.slots;
    let id = -1;
    if (slots !== undefined) {
      id = interner.id(k);
      if (g.gen !== interner.gen) {
        slots.length = 0;
        g.gen = interner.gen;
      }
      const e = slots[id];
      if (e !== undefined) return e;
    }
    let e = g.map.get(k);
    if (e === undefined) {
      if (g.map.size >= GRAPH_LIMITS.stateKeys) {
        ctx.dropped(1);
        return undefined;
      }
      e = { sample: sample(r), count: 0, sum: 0 };
      g.map.set(k, e);
    }
    if (slots !== undefined) {
      while (slots.length < id) slots.push(undefined);
      slots[id] = e;
    }
    return e;
  };
  return {
    init: (): Groups => {
      const g: Groups = { map: new Map(), slots: undefined, gen: interner.gen };
      if (slotted < SLOTTED_WINDOWS) {
        slotted++;
        g.slots = [];
      }
      return g;
    },
    /** A closed window's groups, in order of first record (its slots go to the next window). */
    groups: (g: Groups): Group[] => {
      if (g.slots !== undefined) {
        slotted--;
        g.slots = undefined;
      }
      return [...g.map.values()];
    },
    add: value
      ? (g: Groups, r: Rec) => {
          const e = entry(g, r);
          if (e === undefined) return;
          e.count++;
          const v = value(r);
          if (typeof v === 'number') e.sum += v;
        }
      : (g: Groups, r: Rec) => {
          const e = entry(g, r);
          if (e !== undefined) e.count++;
        },
  };
}

/**
 * Marks an aggregate as a borrower (pure.ts): it reads a record's `fields`, and `ts`, while called and keeps
 * copies of them, so a record reused after the call does for it unless one of those is a reused container.
 */
function borrowing(fields: string[], s: Stepper): Stepper {
  borrowers.set(s, (containers) => !fields.some((f) => containers.includes(f)));
  return s;
}

/** What every window's output record has: its type, and ts, start and end of the window. */
function windowCatalog(extra: [string, FieldInfo][] = []): FieldCatalog {
  return new Map([
    ['type', { kind: 'string', many: false }],
    ['ts', { kind: 'number', many: false }],
    ['start', { kind: 'number', many: false }],
    ['end', { kind: 'number', many: false }],
    ...extra,
  ]);
}

/** A grouped output: the window's fields, the grouping fields at their paths, then the numbers `extra`. */
function groupedCatalog(input: FieldCatalog, by: string[], extra: string[]): FieldCatalog {
  const out = windowCatalog();
  for (const b of by) {
    const segs = b.split('.');
    for (let i = 1; i < segs.length; i++) out.set(segs.slice(0, i).join('.'), { kind: 'object', many: false });
    out.set(b, input.get(b) ?? { kind: 'any', many: false });
  }
  for (const e of extra) out.set(e, { kind: 'number', many: false });
  return out;
}

export const countFilter = defineFilter({
  name: 'count',
  description: 'records per key per event-time window: count(by=orig.src, every=10s, lateness=2s)',
  params: z.object({ by: By.default([]), every: Period, lateness: Lateness }).strict(),
  check: (p, ctx) => checkFields(p.by, ctx.input, ctx.path, 'count'),
  output: (input, p) => groupedCatalog(input, p.by, ['count']),
  step: (p, ctx) => {
    const f = fold(p.by, ctx);
    return borrowing(
      p.by,
      windowed(p, ctx, {
        ...f,
        emit: (g, start, end) =>
          f.groups(g).map((e) => ({ type: 'count', ts: end, start, end, ...e.sample, count: e.count })),
      }),
    );
  },
});

export const sumFilter = defineFilter({
  name: 'sum',
  description: 'sum of a numeric field per key per window: sum(field=orig.bytes, by=orig.src, every=10s)',
  params: z.object({ field: FieldPath, by: By.default([]), every: Period, lateness: Lateness }).strict(),
  positional: (args) => ({ field: args[0] }),
  check: (p, ctx) => checkFields([p.field, ...p.by], ctx.input, ctx.path, 'sum'),
  output: (input, p) => groupedCatalog(input, p.by, ['sum', 'count']),
  step: (p, ctx) => {
    const f = fold(p.by, ctx, p.field);
    return borrowing(
      [...p.by, p.field],
      windowed(p, ctx, {
        ...f,
        emit: (g, start, end) =>
          f.groups(g).map((e) => ({ type: 'sum', ts: end, start, end, ...e.sample, sum: e.sum, count: e.count })),
      }),
    );
  },
});

export const topFilter = defineFilter({
  name: 'top',
  description: 'the n keys with most records (or largest sum of `field`) per window: top(by=orig.dst, n=10, every=10s)',
  params: z
    .object({
      by: By,
      n: z.number().int().positive().default(10),
      every: Period,
      lateness: Lateness,
      field: FieldPath.optional(),
    })
    .strict(),
  check: (p, ctx) => checkFields([...p.by, ...(p.field ? [p.field] : [])], ctx.input, ctx.path, 'top'),
  output: () => windowCatalog([['items', { kind: 'any', many: true }]]),
  step: (p, ctx) => {
    const f = fold(p.by, ctx, p.field);
    const metric = (e: Group) => (p.field ? e.sum : e.count);
    return borrowing(
      [...p.by, ...(p.field ? [p.field] : [])],
      windowed(p, ctx, {
        ...f,
        emit: (g, start, end) => {
          const all = f.groups(g);
          if (all.length === 0) return [];
          const items = all
            .sort((a, b) => metric(b) - metric(a))
            .slice(0, p.n)
            .map((e) => ({ ...e.sample, count: e.count, ...(p.field ? { sum: e.sum } : {}) }));
          return [{ type: 'top', ts: end, start, end, items }];
        },
      }),
    );
  },
});

export const windowFilter = defineFilter({
  name: 'window',
  description: 'batch records per time window: window(every=10s) → {type: "window", start, end, count, records}',
  // A window holds its records in memory until it closes: at most `max` (the rest are dropped and counted).
  params: z
    .object({ every: Period, lateness: Lateness, max: z.number().int().positive().max(100_000).default(10_000) })
    .strict(),
  positional: (args) => ({ every: args[0] }),
  output: () =>
    windowCatalog([
      ['count', { kind: 'number', many: false }],
      ['records', { kind: 'any', many: true }],
    ]),
  step: (p, ctx) =>
    windowed<Rec[]>(p, ctx, {
      init: () => [],
      add: (s, r) => {
        if (s.length < p.max) s.push(r);
        else ctx.dropped(1);
      },
      emit: (s, start, end) => (s.length ? [{ type: 'window', ts: end, start, end, count: s.length, records: s }] : []),
    }),
});
