/**
 * A JSON-RPC batch as one firewall change: calls inside `runBatch` that
 * would apply the firewall only mark the batch (deferredInBatch), and the
 * batch applies it once at its end. The scope follows the calls across
 * awaits (AsyncLocalStorage), so requests outside the batch are not held.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<{ dirty: boolean; over: boolean }>();

export async function runBatch<T>(run: () => Promise<T>, apply: () => Promise<void>): Promise<T> {
  const batch = { dirty: false, over: false };
  try {
    return await scope.run(batch, run);
  } finally {
    batch.over = true;
    if (batch.dirty) await apply();
  }
}

/**
 * True inside a running batch (whose end will apply the firewall); false:
 * apply now. A timer set during a batch keeps its scope after the batch is
 * over, hence `over`.
 */
export function deferredInBatch(): boolean {
  const batch = scope.getStore();
  if (!batch || batch.over) return false;
  batch.dirty = true;
  return true;
}
