/**
 * sample(rate=0.1): keeps a fraction of records. With `by`, the decision is a
 * hash of those fields, so a whole flow is kept or dropped together.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { checkFields, FieldPath, keyGetter, listOf } from '../params.js';
import { defineFilter } from '../registry.js';
import { testStep } from './pure.js';

/** A stable number in [0, 1) for a key. */
export function unitHash(key: string, salt = ''): number {
  return createHash('sha256').update(salt).update(key).digest().readUInt32BE(0) / 0x1_0000_0000;
}

export const sampleFilter = defineFilter({
  name: 'sample',
  description: 'keep a fraction of records: sample(rate=0.1) or, whole flows by key, sample(rate=0.1, by=id)',
  params: z
    .object({
      rate: z.number().min(0).max(1),
      by: listOf(z.string()).pipe(z.array(FieldPath)).optional(),
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
      const decided = new Map<unknown, boolean>();
      // A pure test as far as the graph is concerned (the cache only saves hashing): fused inline.
      return testStep((r) => {
        const k = key(r);
        let keep = decided.get(k);
        if (keep === undefined) {
          keep = unitHash(String(k), salt) < p.rate;
          if (decided.size > 100_000) decided.clear();
          decided.set(k, keep);
        }
        return keep;
      });
    }
    return testStep(() => Math.random() < p.rate);
  },
});
