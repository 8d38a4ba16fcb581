/** ratelimit(rate=1000, burst=…): a token bucket; records over the rate are dropped and counted. */
import { z } from 'zod';
import { registerFilter } from '../registry.js';

registerFilter({
  name: 'ratelimit',
  description: 'at most `rate` records per second (bursts up to `burst`); the rest are dropped and counted',
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
      if (tokens >= 1) {
        tokens -= 1;
        emit(r);
      } else ctx.dropped(1);
    };
  },
});
