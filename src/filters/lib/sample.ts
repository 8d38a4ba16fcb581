/**
 * sample(rate=0.1): keeps a fraction of records. With `by`, the decision is a
 * hash of those fields, so a whole flow is kept or dropped together.
 */
import * as crypto from 'node:crypto';
import { z } from 'zod';
import { ownString } from '../../util/own-string.js';
import { checkFields, FieldPaths, keyGetter, listOf } from '../params.js';
import { defineFilter } from '../registry.js';
import { testStep } from './pure.js';

/**
 * SHA-256 in one call where Node has it (20.12 on): no Hash object per key. Each of those holds a weak handle that
 * every scavenge visits, and a new flow meets its keys by the thousand: its scavenges took 17 ms each, 3 without.
 */
const sha256Hex: (data: string) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** A stable number in [0, 1) for a key: the first 32 bits of SHA-256(salt + key). */
export function unitHash(key: string, salt = ''): number {
  return Number.parseInt(sha256Hex(salt + key).slice(0, 8), 16) / 0x1_0000_0000;
}

export const sampleFilter = defineFilter({
  name: 'sample',
  description: 'keep a fraction of records: sample(rate=0.1) or, whole flows by key, sample(rate=0.1, by=id)',
  params: z
    .object({
      rate: z.number().min(0).max(1),
      by: listOf(z.string()).pipe(FieldPaths).optional(),
      seed: z.string().optional(),
    })
    .strict(),
  positional: (args) => ({ rate: args[0] }),
  check: (p, ctx) => (p.by ? checkFields(p.by, ctx.input, ctx.path, 'sample') : []),
  step: (p) => {
    if (p.by) {
      const key = keyGetter(p.by);
      const salt = p.seed ?? '';
      // Cache decisions: a flow's records share a key, hashing it once.
      const decided = new Decisions((k) => unitHash(String(k), salt) < p.rate);
      // A pure test as far as the graph is concerned (the cache only saves hashing): fused inline.
      return testStep((r) => decided.keep(key(r)));
    }
    return testStep(() => Math.random() < p.rate);
  },
});

/** Decisions a sample keeps at most; past it, it forgets them all and decides again (the same way: by hash). */
export const MAX_DECISIONS = 100_000;
/** Slots of the integer table: a power of two, at least twice MAX_DECISIONS (probes stay short). */
const INT_SLOTS_MAX = 1 << 18;

/**
 * The decisions of a sample by key, made by `decide` once per key. Keys that are whole numbers in [0, 2^32) (a
 * conntrack id, a port) live in an open-addressed table of two typed arrays: a lookup reads one slot, where a Map
 * reads its bucket, then the entry. Other keys go to a Map.
 */
export class Decisions {
  private keys = new Uint32Array(1024);
  /** Per slot: 0 empty, 1 keep, 2 drop. */
  private states = new Uint8Array(1024);
  private shift = 32 - 10;
  private ints = 0;
  private readonly others = new Map<unknown, boolean>();

  constructor(private readonly decide: (k: unknown) => boolean) {}

  get size(): number {
    return this.ints + this.others.size;
  }

  keep(k: unknown): boolean {
    if (typeof k === 'number' && k >>> 0 === k) {
      const keys = this.keys;
      const states = this.states;
      const mask = keys.length - 1;
      for (let i = this.home(k); ; i = (i + 1) & mask) {
        const s = states[i];
        if (s === 0) break;
        if (keys[i] === k) return s === 1;
      }
      return this.add(k);
    }
    let keep = this.others.get(k);
    if (keep === undefined) {
      keep = this.decide(k);
      if (this.others.size >= MAX_DECISIONS) this.others.clear();
      this.others.set(typeof k === 'string' ? ownString(k) : k, keep);
    }
    return keep;
  }

  private add(k: number): boolean {
    const keep = this.decide(k);
    if (this.ints >= MAX_DECISIONS) {
      this.states.fill(0);
      this.ints = 0;
    } else if (2 * (this.ints + 1) > this.keys.length && this.keys.length < INT_SLOTS_MAX) this.grow();
    this.put(k, keep ? 1 : 2);
    return keep;
  }

  /** The first slot to probe for `k`: the high bits of a multiplicative hash. */
  private home(k: number): number {
    return Math.imul(k, 0x9e3779b1) >>> this.shift;
  }

  private put(k: number, state: number): void {
    const mask = this.keys.length - 1;
    let i = this.home(k);
    while (this.states[i] !== 0) i = (i + 1) & mask;
    this.keys[i] = k;
    this.states[i] = state;
    this.ints++;
  }

  /** Twice the slots, with the decisions made so far. */
  private grow(): void {
    const keys = this.keys;
    const states = this.states;
    this.keys = new Uint32Array(keys.length * 2);
    this.states = new Uint8Array(keys.length * 2);
    this.shift--;
    this.ints = 0;
    for (let i = 0; i < keys.length; i++) if (states[i] !== 0) this.put(keys[i], states[i]);
  }
}
