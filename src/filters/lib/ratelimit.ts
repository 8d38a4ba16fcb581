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

/**
 * Entries a record stands for: 1, or what its batch's entries stand for, however deep batches nest (a window of
 * windows carries each inner window's records: counting only the outer batch let 2 500 records through a limit
 * of 5 a second as one).
 */
export function recordCost(r: Rec): number {
  const v = batchOf(r);
  if (v === undefined) return 1;
  let n = 0;
  for (const e of v) n += entryCost(e);
  return Math.max(1, n);
}

const entryCost = (e: unknown): number => (typeof e === 'object' && e !== null ? recordCost(e as Rec) : 1);

function batchOf(r: Rec): unknown[] | undefined {
  for (const f of BATCH_FIELDS) {
    const v = r[f];
    if (Array.isArray(v)) return v;
  }
  return undefined;
}

/**
 * The record cut to entries costing at most `n` (≥ 1), and what they cost: whole entries while they fit, then the
 * next one cut in turn if it is a batch. Each batch cut says by how many entries (`truncated`).
 */
function cut(r: Rec, n: number): [Rec, number] {
  for (const f of BATCH_FIELDS) {
    const v = r[f];
    if (!Array.isArray(v)) continue;
    const kept: unknown[] = [];
    let used = 0;
    for (const e of v) {
      const c = entryCost(e);
      if (used + c <= n) {
        kept.push(e);
        used += c;
        continue;
      }
      if (n - used >= 1 && c > 1) {
        const [part, u] = cut(e as Rec, n - used);
        kept.push(part);
        used += u;
      }
      break;
    }
    const out: Rec = { ...r, [f]: kept, truncated: v.length - kept.length };
    if (typeof r.count === 'number' && f === 'records') out.count = kept.length;
    return [out, used];
  }
  return [r, 1];
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
        const [part, used] = cut(r, Math.floor(tokens));
        tokens -= used;
        emit(part);
        ctx.dropped(cost - used);
      } else ctx.dropped(cost);
    };
  },
});
