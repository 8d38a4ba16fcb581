/**
 * ratelimit(rate=1000, burst=…): a token bucket; records over the rate are
 * dropped and counted. A batch (a record carrying others, like window()'s
 * `records` or top()'s `items`) costs one token per entry, so batching
 * cannot carry more than `rate` entries a second past the limit a policy
 * sets: a batch larger than the tokens left is cut to fit (the cut entries
 * are counted as dropped, and the batch says `truncated: n`).
 */
import { z } from 'zod';
import { defineFilter, type Rec } from '../registry.js';

/** Fields through which a record carries other records. */
export const BATCH_FIELDS = ['records', 'items'] as const;

/** Entries a record stands for: 1, or the length of its batch. */
export function recordCost(r: Rec): number {
  for (const f of BATCH_FIELDS) {
    const v = r[f];
    if (Array.isArray(v)) return Math.max(1, v.length);
  }
  return 1;
}

/** The record cut to `n` entries of its batch. */
function cut(r: Rec, n: number): Rec {
  for (const f of BATCH_FIELDS) {
    const v = r[f];
    if (Array.isArray(v)) {
      const out: Rec = { ...r, [f]: v.slice(0, n), truncated: v.length - n };
      if (typeof r.count === 'number' && f === 'records') out.count = n;
      return out;
    }
  }
  return r;
}

export const ratelimitFilter = defineFilter({
  name: 'ratelimit',
  description:
    'at most `rate` records per second (bursts up to `burst`), batches counted per entry; the rest are dropped and counted',
  params: z.object({ rate: z.number().positive(), burst: z.number().positive().optional() }).strict(),
  positional: (args) => ({ rate: args[0] }),
  step: (p, ctx) => {
    const burst = p.burst ?? p.rate;
    let tokens = burst;
    let last = ctx.scheduler.now();
    return (r, emit) => {
      const now = ctx.scheduler.now();
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * p.rate);
      last = now;
      const cost = recordCost(r);
      if (tokens >= cost) {
        tokens -= cost;
        emit(r);
      } else if (cost > 1 && tokens >= 1) {
        const n = Math.floor(tokens);
        tokens -= n;
        emit(cut(r, n));
        ctx.dropped(cost - n);
      } else ctx.dropped(cost);
    };
  },
});
