/**
 * Keeping one client's failure that client's: everything done for a client
 * (its frames, and whatever they schedule: timers, streams, subscriptions)
 * runs inside an AsyncLocalStorage context naming it. An exception nobody
 * caught is traced back through that context and closes that client only;
 * the daemon goes on for everyone else.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface Guarded {
  readonly cid: number;
  /** Closes the client, telling it why (best effort). */
  fail(err: unknown): void;
}

const current = new AsyncLocalStorage<Guarded>();

/** Runs `fn` as work done for `client`. */
export function forClient<T>(client: Guarded, fn: () => T): T {
  return current.run(client, fn);
}

/** The client whose work is running now, if any. */
export function currentClient(): Guarded | undefined {
  return current.getStore();
}

let installed: ((err: unknown) => void) | undefined;

/**
 * Installs the process-wide net: an uncaught exception or rejection inside a
 * client's context closes that client; outside any, `onOther` decides (the
 * CLI logs it). Returns the uninstaller.
 */
export function installGuard(
  onOther: (err: unknown) => void,
  onClient: (cid: number, err: unknown) => void,
): () => void {
  if (installed) return () => {};
  const handler = (err: unknown) => {
    const c = current.getStore();
    if (!c) return onOther(err);
    onClient(c.cid, err);
    c.fail(err);
  };
  installed = handler;
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
  return () => {
    process.off('uncaughtException', handler);
    process.off('unhandledRejection', handler);
    installed = undefined;
  };
}
