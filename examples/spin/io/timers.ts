/** The core's periodic work: an interval that never lets an error escape. */
/** Runs `fn` every `ms` (unref'd), logging what it throws or rejects with instead of letting it escape. */
export function every(ms: number, fn: () => unknown, log: (line: string) => void): NodeJS.Timeout {
  const t = setInterval(() => {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err) => log(`timer: ${(err as Error).message}`));
    } catch (err) {
      log(`timer: ${(err as Error).message}`);
    }
  }, ms);
  t.unref();
  return t;
}
