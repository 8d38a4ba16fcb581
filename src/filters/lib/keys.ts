/**
 * Grouping keys interned as small numbers. The aggregates (count/sum/top)
 * that group the same input by the same fields share one interner, so a
 * record's key is looked up once however many of them it reaches (8 flows
 * counting one shared prefix in their own windows): the first looks it up,
 * the others find it as the last key, and each finds its group at that
 * number in an array.
 */
import { ownString } from '../../util/own-string.js';
import type { FieldCatalog } from '../fields.js';

/** Keys one interner numbers; past it, it starts over (a new generation: earlier numbers mean nothing). */
export const INTERNED_KEYS = 1 << 16;
/** Interners shared per input; past it, an aggregate interns on its own. */
const SHARED_PER_INPUT = 16;

export class KeyInterner {
  private readonly ids = new Map<unknown, number>();
  // A string from the start: compared with string keys only, the check compiles to a string compare, not the generic one.
  // It is the key as it came (one string kept alive with whatever it was sliced from, until the next key).
  private lastKey: unknown = '';
  private lastId = -1;
  /** Bumped when the numbering starts over. */
  gen = 0;
  /** Keys looked up in the table (the others were the last key). */
  lookups = 0;

  /** The number of key `k` (SameValueZero, as a Map). */
  id(k: unknown): number {
    if (k === this.lastKey && this.lastId >= 0) return this.lastId;
    this.lookups++;
    let id = this.ids.get(k);
    if (id === undefined) {
      if (this.ids.size >= INTERNED_KEYS) {
        this.ids.clear();
        this.gen++;
      }
      id = this.ids.size;
      // The table keeps its own copy of a string key: the keys lie together, not each in its record.
      this.ids.set(typeof k === 'string' ? ownString(k) : k, id);
    }
    this.lastKey = k;
    this.lastId = id;
    return id;
  }
}

/** Per input catalog (one object per upstream stage: sibling aggregates see the same one), interners by grouping. */
const shared = new WeakMap<FieldCatalog, Map<string, KeyInterner>>();

/** The interner of the aggregates grouping records of `input` by `by`. */
export function sharedInterner(input: FieldCatalog, by: string[]): KeyInterner {
  let byInput = shared.get(input);
  if (!byInput) {
    byInput = new Map();
    shared.set(input, byInput);
  }
  const text = JSON.stringify(by);
  let it = byInput.get(text);
  if (!it) {
    it = new KeyInterner();
    if (byInput.size < SHARED_PER_INPUT) byInput.set(text, it);
  }
  return it;
}
