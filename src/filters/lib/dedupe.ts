/** dedupe(by=…, window=10s): drops a record whose key was already seen within the window. */
import { z } from 'zod';
import { GRAPH_LIMITS } from '../limits.js';
import { checkFields, FieldPaths, keyGetter, listOf, Period } from '../params.js';
import { defineFilter } from '../registry.js';

export const dedupeFilter = defineFilter({
  name: 'dedupe',
  description: 'drop repeats of a key within a time window: dedupe(by=qname, window=10s)',
  params: z.object({ by: listOf(z.string()).pipe(FieldPaths), window: Period }).strict(),
  positional: (args) => ({ by: args[0], ...(args[1] !== undefined ? { window: args[1] } : {}) }),
  check: (p, ctx) => checkFields(p.by, ctx.input, ctx.path, 'dedupe'),
  step: (p, ctx) => {
    const seen = new Map<unknown, number>();
    const key = keyGetter(p.by);
    let lastSweep = 0;
    return (r, emit) => {
      const now = ctx.scheduler.now();
      if (now - lastSweep > p.window) {
        for (const [k, t] of seen) if (now - t >= p.window) seen.delete(k);
        lastSweep = now;
      }
      const k = key(r);
      const t = seen.get(k);
      if (t !== undefined && now - t < p.window) return;
      // Bounded memory: past GRAPH_LIMITS.stateKeys new keys pass without being remembered (repeats get through, never the heap).
      if (t !== undefined || seen.size < GRAPH_LIMITS.stateKeys) seen.set(k, now);
      emit(r);
    };
  },
});
