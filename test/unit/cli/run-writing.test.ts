import { describe, expect, it, vi } from 'vitest';
import { runWriting } from '../../../src/cli/run.js';

describe('runWriting', () => {
  it('flushes what was written within 200 ms, and runs no timer while nothing is written', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      let flushes = 0;
      let wrote = () => {};
      let finish = () => {};
      const code = runWriting(
        (end, w) => {
          wrote = w;
          finish = end;
          return { done: new Promise<void>(() => {}), stop: () => {} };
        },
        { flush: () => flushes++ },
      );
      // Quiet: nothing to flush, no timer.
      await vi.advanceTimersByTimeAsync(60_000);
      expect(flushes).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      // Writes arm one flush, at most FLUSH_MS later, however many come meanwhile.
      wrote();
      await vi.advanceTimersByTimeAsync(100);
      wrote();
      expect(flushes).toBe(0);
      await vi.advanceTimersByTimeAsync(100);
      expect(flushes).toBe(1);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(flushes).toBe(1);
      expect(vi.getTimerCount()).toBe(0);
      // The end flushes whatever is left.
      wrote();
      finish();
      expect(await code).toBe(0);
      expect(flushes).toBe(2);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
