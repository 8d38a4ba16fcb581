/** dedupe(by=…, window=10s): drops a record whose key was already seen within the window. */
import { filter } from 'rxjs';
import { z } from 'zod';
import { checkFields, Duration, FieldPath, keyOf, listOf } from '../params.js';
import { registerFilter } from '../registry.js';

registerFilter({
  name: 'dedupe',
  description: 'drop repeats of a key within a time window: dedupe(by=qname, window=10s)',
  params: z.object({ by: listOf(z.string()).pipe(z.array(FieldPath)), window: Duration }).strict(),
  positional: (args) => ({ by: args[0], ...(args[1] !== undefined ? { window: args[1] } : {}) }),
  check: (p, ctx) => checkFields(p.by, ctx.input, ctx.path, 'dedupe'),
  create: (p, ctx) => {
    const seen = new Map<string, number>();
    let lastSweep = 0;
    return filter((r) => {
      const now = ctx.scheduler.now();
      if (now - lastSweep > p.window) {
        for (const [k, t] of seen) if (now - t >= p.window) seen.delete(k);
        lastSweep = now;
      }
      const k = keyOf(r, p.by);
      const t = seen.get(k);
      if (t !== undefined && now - t < p.window) return false;
      seen.set(k, now);
      return true;
    });
  },
});
