/**
 * Waiting for facts in unit tests: `until(fact)` checks after every few
 * milliseconds and throws FG_ERR_TIMEOUT naming the fact when it still does
 * not hold after a bound generous enough for a loaded machine.
 */
import { waitFor } from '../../src/testing/lab/netns.js';

/**
 * Resolves once `fact()` holds; throws naming `what` after `timeoutMs`
 * (default 4 s: in-memory facts, and under the unit tests' 5 s limit so this
 * error, not vitest's, is what a failure shows).
 */
export function until(fact: () => boolean, what: string, timeoutMs = 4_000): Promise<void> {
  return waitFor(fact, { timeoutMs, intervalMs: 2, what });
}
