/**
 * Windowed aggregates: count(by, every), sum(field, by, every),
 * top(by, n, every[, field]) and window(every). Windows are in event time
 * (the records' `ts`, see windowed.ts), aligned to `every`, and take an
 * allowed `lateness` (default 2s, at most 5m). Grouped outputs keep the
 * grouping fields at their paths, so later filters can match on them:
 * count(by=orig.src) → {type: 'count', ts, start, end, orig: {src}, count}.
 */
import { z } from 'zod';
import { ownString } from '../../util/own-string.js';
import type { FieldCatalog, FieldInfo } from '../fields.js';
import { GRAPH_LIMITS } from '../limits.js';
import { checkFields, Duration, FieldPath, FieldPaths, keyGetter, listOf, Period, pathGetter } from '../params.js';
import { type BuildContext, defineFilter, type Rec, type Stepper } from '../registry.js';
import { sharedInterner } from './keys.js';
import { projector } from './project.js';
import { borrowers } from './pure.js';
import { DEFAULT_LATENESS_MS, MAX_LATENESS_MS, windowed } from './windowed.js';

const By = listOf(z.string()).pipe(FieldPaths);

/** How late (behind the newest record's ts) a record may come and still join its window. */
const Lateness = Duration.pipe(
  z.number().max(MAX_LATENESS_MS, { error: `expected a lateness of at most ${MAX_LATENESS_MS / 60_000}m` }),
).default(DEFAULT_LATENESS_MS);

interface Group {
  sample: Rec;
  count: number;
  sum: number;
}

/**
 * A window's groups, as columns: group i (in order of first record) has samples[i], counts[i] and sums[i].
 * Counting a record touches two compact arrays, not an object per group scattered in the heap: with several
 * aggregates counting the same records (flows sharing a prefix), each record would otherwise cost a cache
 * miss per aggregate.
 */
interface Groups {
  /**
   * Group index by key. A slotted window has none while the interner's numbering holds (a key without a slot
   * has no group yet); it is built from `keys` when the numbering starts over.
   */
  map?: Map<unknown, number>;
  keys: unknown[];
  samples: Rec[];
  counts: number[];
  sums: number[];
  /** Group index + 1 by interned key number (0: not looked up yet), for the interner's generation `gen`; absent past the fold's slotted windows. */
  slots?: Int32Array;
  gen: number;
}

/** Windows per aggregate that also index their groups by key number (each such array grows up to INTERNED_KEYS). */
const SLOTTED_WINDOWS = 4;
/** First size of a window's slots (doubled as key numbers grow past it). */
const FIRST_SLOTS = 1024;

/**
 * Groups are bounded per filter, over all its open windows (GRAPH_LIMITS.stateKeys): records of new keys past it
 * are dropped and counted. (Per window, 256 windows open at once, 1 ms each with 5 minutes' lateness, held 256
 * times the bound.)
 */
function fold(by: string[], ctx: BuildContext, field?: string) {
  const key = keyGetter(by);
  const sample = projector(by.map((b) => b.split('.')));
  const value = field ? pathGetter(field) : undefined;
  const interner = sharedInterner(ctx.input, by);
  let slotted = 0;
  /** Groups in the open windows. */
  let held = 0;
  /** A new group for key `k`, first seen in `r` (-1: the filter holds all it may). */
  const make = (g: Groups, k: unknown, r: Rec): number => {
    const i = g.counts.length;
    if (held >= GRAPH_LIMITS.stateKeys) {
      ctx.dropped(1);
      return -1;
    }
    held++;
    const own = typeof k === 'string' ? ownString(k) : k;
    g.map?.set(own, i);
    g.keys.push(own);
    g.samples.push(sample(r));
    g.counts.push(0);
    g.sums.push(0);
    return i;
  };
  /**
   * The group of a key not found by its number: looked up by key, or made. Without a map (a slotted window in
   * the numbering it began with, where each group made took its slot) a key without a slot has no group yet.
   */
  const byKey = (g: Groups, k: unknown, r: Rec): number => g.map?.get(k) ?? make(g, k, r);
  // One group per key per window; per record, one array read once the key is interned (and no allocation).
  const entry = (g: Groups, r: Rec): number => {
    const k = key(r);
    let slots = g.slots;
    if (slots === undefined) return byKey(g, k, r);
    const id = interner.id(k);
    if (g.gen !== interner.gen) {
      // Numbers of the old generation mean nothing now: groups are found by key (the map) until slotted again.
      slots.fill(0);
      g.gen = interner.gen;
      g.map ??= new Map(g.keys.map((key, i) => [key, i]));
    }
    if (id < slots.length) {
      const i = slots[id];
      if (i !== 0) return i - 1;
    } else {
      let n = slots.length * 2;
      while (n <= id) n *= 2;
      const grown = new Int32Array(n);
      grown.set(slots);
      g.slots = slots = grown;
    }
    const i = byKey(g, k, r);
    if (i >= 0) slots[id] = i + 1;
    return i;
  };
  return {
    init: (): Groups => {
      const g: Groups = {
        map: undefined,
        keys: [],
        samples: [],
        counts: [],
        sums: [],
        slots: undefined,
        gen: interner.gen,
      };
      if (slotted < SLOTTED_WINDOWS) {
        slotted++;
        g.slots = new Int32Array(FIRST_SLOTS);
      } else g.map = new Map();
      return g;
    },
    /** A closed window's groups, in order of first record. */
    groups: (g: Groups): Group[] => {
      if (g.slots !== undefined) {
        slotted--;
        g.slots = undefined;
      }
      held -= g.counts.length;
      return g.samples.map((sample, i) => ({ sample, count: g.counts[i], sum: g.sums[i] }));
    },
    add: value
      ? (g: Groups, r: Rec) => {
          const i = entry(g, r);
          if (i < 0) return;
          g.counts[i]++;
          const v = value(r);
          if (typeof v === 'number') g.sums[i] += v;
        }
      : (g: Groups, r: Rec) => {
          const i = entry(g, r);
          if (i >= 0) g.counts[i]++;
        },
  };
}

/**
 * Marks an aggregate as a borrower (pure.ts): it reads a record's `fields`, and `ts`, while called and keeps
 * copies of them, so a projection before it that keeps those fields need not run (fuse.ts).
 */
function borrowing(fields: string[], s: Stepper): Stepper {
  // The window reads `ts` (windowed.ts); the fold, its fields (the key, the group's sample and the summed value).
  borrowers.set(s, [...fields, 'ts']);
  return s;
}

/**
 * A grouping key may not be one of the fields the output record itself has (count by `type` would overwrite the
 * record's `type: 'count'`, or lose the key): refused with the reason, rather than records that say the wrong thing.
 */
function reservedKeys(by: string[], own: readonly string[], path: BuildContext['path'], name: string) {
  return by
    .filter((b) => own.includes(b))
    .map((b) => ({
      code: 'bad_parameter',
      path,
      message: `${name}: by=${b}: the output record has its own \`${b}\` (${own.join(', ')}); group by another field`,
    }));
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

/** The fields of the aggregates' own output records (a key may not be one of them; builder.ts types the same). */
const COUNT_FIELDS = ['type', 'ts', 'start', 'end', 'count'] as const;
export const SUM_FIELDS = [...COUNT_FIELDS, 'sum'] as const;
/** top's items: the key and its count (and sum). */
const TOP_ITEM_FIELDS = ['count', 'sum'];

export const countFilter = defineFilter({
  name: 'count',
  description: 'records per key per event-time window: count(by=orig.src, every=10s, lateness=2s)',
  params: z.object({ by: By.default([]), every: Period, lateness: Lateness }).strict(),
  check: (p, ctx) => [
    ...checkFields(p.by, ctx.input, ctx.path, 'count'),
    ...reservedKeys(p.by, COUNT_FIELDS, ctx.path, 'count'),
  ],
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
  check: (p, ctx) => [
    ...checkFields([p.field, ...p.by], ctx.input, ctx.path, 'sum'),
    ...reservedKeys(p.by, SUM_FIELDS, ctx.path, 'sum'),
  ],
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
  check: (p, ctx) => [
    ...checkFields([...p.by, ...(p.field ? [p.field] : [])], ctx.input, ctx.path, 'top'),
    ...reservedKeys(p.by, TOP_ITEM_FIELDS, ctx.path, 'top'),
  ],
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

/** Bytes of records all open windows of one window() hold at most by default, and at most at all. */
export const WINDOW_BYTES = { default: 64 << 20, max: 256 << 20 } as const;

/**
 * Roughly the heap bytes of a record (V8's sizes: 16 per object or list and 8 per slot, a string 16 plus its
 * length, a Buffer its bytes): counted by the records, not the messages they came from (a 64 KB DNS response of
 * 2 400 answers is a 326 KB record). Walks without recursion.
 */
export function approxBytes(v: unknown): number {
  let bytes = 0;
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'string') bytes += 16 + x.length;
    else if (x === null || typeof x !== 'object') bytes += 8;
    else if (ArrayBuffer.isView(x)) bytes += 64 + x.byteLength;
    else if (Array.isArray(x)) {
      bytes += 16 + 8 * x.length;
      for (const e of x) if (typeof e === 'object' || typeof e === 'string') stack.push(e);
    } else {
      const vals = Object.values(x);
      bytes += 16 + 16 * vals.length;
      for (const e of vals) if (typeof e === 'object' || typeof e === 'string') stack.push(e);
    }
  }
  return bytes;
}

export const windowFilter = defineFilter({
  name: 'window',
  description: 'batch records per time window: window(every=10s) → {type: "window", start, end, count, records}',
  // A window holds its records in memory until it closes: at most `max` in one, `maxBytes` in all of them (the
  // rest are dropped and counted).
  params: z
    .object({
      every: Period,
      lateness: Lateness,
      max: z.number().int().positive().max(100_000).default(10_000),
      maxBytes: z.number().int().positive().max(WINDOW_BYTES.max).default(WINDOW_BYTES.default),
    })
    .strict(),
  positional: (args) => ({ every: args[0] }),
  output: () =>
    windowCatalog([
      ['count', { kind: 'number', many: false }],
      ['records', { kind: 'any', many: true }],
    ]),
  step: (p, ctx) => {
    // Records in the open windows: at most `max` in one, GRAPH_LIMITS.stateKeys and `maxBytes` in all of them.
    let held = 0;
    let heldBytes = 0;
    return windowed<{ records: Rec[]; bytes: number }>(p, ctx, {
      init: () => ({ records: [], bytes: 0 }),
      add: (s, r) => {
        const size = approxBytes(r);
        if (s.records.length < p.max && held < GRAPH_LIMITS.stateKeys && heldBytes + size <= p.maxBytes) {
          s.records.push(r);
          s.bytes += size;
          held++;
          heldBytes += size;
        } else ctx.dropped(1);
      },
      emit: ({ records, bytes }, start, end) => {
        held -= records.length;
        heldBytes -= bytes;
        return records.length ? [{ type: 'window', ts: end, start, end, count: records.length, records }] : [];
      },
    });
  },
});
