/**
 * One Lab per test file: built before the file's tests, closed after them,
 * and closed at once when its set-up fails (so a failed beforeAll leaves no
 * namespace behind).
 */
import { afterAll, beforeAll } from 'vitest';
import { Lab } from '../../src/testing/lab/index.js';

/**
 * Registers beforeAll/afterAll for a Lab of this file: `setup` fills it in
 * (namespaces, processes) before the tests; a setup that throws closes the
 * lab and rethrows. `timeoutMs` bounds the set-up (vitest's hook timeout by
 * default). Returns the lab once built.
 */
export function fileLab(setup: (lab: Lab) => Promise<void>, timeoutMs?: number): () => Lab {
  let lab: Lab | undefined;
  beforeAll(async () => {
    lab = new Lab();
    try {
      await setup(lab);
    } catch (err) {
      await lab.close().catch(() => {});
      throw err;
    }
  }, timeoutMs);
  afterAll(async () => {
    await lab?.close();
  });
  return () => {
    if (!lab) throw new Error('the lab is built in beforeAll: use it in a test');
    return lab;
  };
}
