/** Where flowgrabd is, for the commands that can run through it (apart, so a plain run loads no graph code). */
import type { Command } from 'commander';

/** The daemon to use, from --daemon or FLOWGRAB_DAEMON; none means in-process. */
export function daemonPath(cmd?: Command): string | undefined {
  const p = (cmd?.optsWithGlobals().daemon as string | undefined) ?? process.env.FLOWGRAB_DAEMON;
  return p === '' ? undefined : p;
}
