/**
 * Sources whose kernel resources outlive the synchronous unsubscribe: a
 * closed DNS feed removes its nft table, a closed NFQUEUE feed decides its
 * packets, removes its rules and unbinds, after the fact. Each registers
 * that work here; a process about to exit awaits it (Flowgrab.close(),
 * flowgrabd's close).
 */
const pending = new Set<Promise<void>>();

/** Registers the teardown of a closed feed; returns the promise to chain on (it settles as `p` does). */
export function trackTeardown(p: Promise<void>): Promise<void> {
  const tracked = p.finally(() => pending.delete(tracked));
  pending.add(tracked);
  return tracked;
}

/** Teardowns still running. */
export function teardownsPending(): number {
  return pending.size;
}

/** Resolves once every source closed so far has released what it holds in the kernel (rules, tables). */
export async function sourcesTornDown(): Promise<void> {
  await Promise.allSettled([...pending]);
}
