/** Where spools live by default: systemd's STATE_DIRECTORY, /var/lib/flowgrab for root, else the XDG state directory. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function stateDir(): string {
  const systemd = process.env.STATE_DIRECTORY?.split(':')[0];
  if (systemd) return systemd;
  if (process.getuid?.() === 0) return '/var/lib/flowgrab';
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'flowgrab');
}

export const defaultSpoolDir = (name: string): string =>
  join(stateDir(), 'spool', name.replace(/[^A-Za-z0-9_.-]/g, '_'));
