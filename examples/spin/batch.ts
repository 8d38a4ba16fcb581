/**
 * A JSON-RPC batch as one firewall change: calls inside `runBatch` that
 * would apply the firewall only mark the batch (deferredInBatch), and the
 * batch applies it once at its end. The scope follows the calls across
 * awaits (AsyncLocalStorage), so requests outside the batch are not held.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<{ dirty: boolean }>();

export async function runBatch<T>(run: () => Promise<T>, apply: () => Promise<void>): Promise<T> {
  const batch = { dirty: false };
  try {
    return await scope.run(batch, run);
  } finally {
    if (batch.dirty) await apply();
  }
}

/** True inside a batch (whose end will apply the firewall); false: apply now. */
export function deferredInBatch(): boolean {
  const batch = scope.getStore();
  if (batch) batch.dirty = true;
  return batch !== undefined;
}
