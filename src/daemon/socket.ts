/**
 * The listening socket, made so nobody can redirect it: its directory must
 * belong to the daemon's user (or root) and be writable by nobody else (a
 * planted symlink or file there could otherwise be chmod-ed or unlinked as
 * root); a socket a live daemon still answers on is never replaced; the
 * mode comes from the umask at bind time, never from a chmod by path.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { dirname } from 'node:path';
import { FlowgrabError } from '../errors.js';
import { trustedDir } from '../util/trusted-dir.js';

const refuse = (message: string) => new FlowgrabError('FG_ERR_INVALID_STATE', message, { op: 'listen' });

/**
 * Creates the socket's directory (0755) when missing; refuses one that others could write or that is not ours,
 * or below a directory others could write (they could swap it for a symlink): see util/trusted-dir.ts.
 */
export function checkSocketDir(path: string): void {
  trustedDir(dirname(path), 'socket directory', { createMode: 0o755 });
}

/** True when something accepts connections at `path` (a live daemon). */
export function answers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (v: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(true), timeoutMs); // a daemon too busy to accept is still alive
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Removes a stale socket left by a killed daemon; refuses a live one, and anything that is not a socket. */
export async function clearStaleSocket(path: string): Promise<void> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw refuse(`${path} exists and is not a socket: refusing to replace it`);
  if (await answers(path)) throw refuse(`another flowgrabd answers at ${path}: refusing to start a second one`);
  unlinkSync(path);
}

/** Listens on `path` with mode 0666 from the umask at bind time (bind creates the file; nothing re-resolves the path). */
export function listenSocket(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const old = process.umask(0o111);
    try {
      // Node binds synchronously inside listen() for a path; the umask is restored right after.
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}
