/**
 * Readiness: when a source subscription is really capturing. A flow's
 * activate() waits for it, so whatever happens after activate resolves
 * (a lookup, a connection, a queued packet) is seen.
 */

/**
 * Told once per subscribe what resolves when that subscription captures
 * (its multicast groups joined, its NFLOG group or queue bound, its
 * firewall rules installed), or rejects with why it never will.
 */
export type ReadyObserver = (capturing: Promise<void>) => void;

/** Tells `observer` (if any) about `capturing`; a rejection no one else awaits is not left unhandled. */
export function signalReady(observer: ReadyObserver | undefined, capturing: Promise<void>): void {
  // Handled here whoever listens: the source reports the same failure to its subscriber.
  capturing.catch(() => {});
  if (!observer) return;
  try {
    observer(capturing);
  } catch {
    // A failing observer must not break the source.
  }
}
