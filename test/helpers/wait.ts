/**
 * Waiting for facts in unit tests: `until(fact)` checks after every few
 * milliseconds and throws FG_ERR_TIMEOUT naming the fact when it still does
 * not hold after a bound generous enough for a loaded machine.
 */
import { waitFor } from '../../src/testing/lab/netns.js';

/**
 * Resolves once `fact()` holds; throws naming `what` after `timeoutMs`
 * (default 15 s: in-memory facts on a busy machine, and under the unit tests'
 * 30 s limit so this error, not vitest's, is what a failure shows).
 */
export function until(fact: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  return waitFor(fact, { timeoutMs, intervalMs: 2, what });
}
