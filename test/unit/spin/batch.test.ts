import { describe, expect, it } from 'vitest';
import { deferredInBatch, runBatch } from '../../../examples/spin/io/batch.js';

describe('runBatch', () => {
  it('defers inside the batch, applies once at its end, and not for work outliving it', async () => {
    let applied = 0;
    const inside: boolean[] = [];
    let later: Promise<boolean> | undefined;
    await runBatch(
      async () => {
        for (let i = 0; i < 5; i++) {
          await Promise.resolve();
          inside.push(deferredInBatch());
        }
        // A callback queued in the batch keeps its async context after the batch ends (it runs after the apply).
        later = new Promise((r) => setImmediate(() => r(deferredInBatch())));
      },
      async () => {
        applied++;
      },
    );
    expect(inside).toEqual([true, true, true, true, true]);
    expect(applied).toBe(1);
    expect(await later).toBe(false);
    expect(deferredInBatch()).toBe(false);
  });
});
