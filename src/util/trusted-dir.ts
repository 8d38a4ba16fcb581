/**
 * Directories a privileged process writes into, made so another user cannot
 * redirect what it writes there: the directory itself is a real directory
 * (not a symlink) belonging to this process's user or root and writable by
 * nobody else, and so is every directory above it, unless that one is
 * sticky (like /tmp: there nobody may rename or remove what another user
 * made). Otherwise a user who can write in it, or rename it, could plant a
 * symlink where a file is about to be written, or swap the directory itself.
 */
import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';
import { FlowgrabError } from '../errors.js';

/** The sticky bit: in such a directory only an entry's owner may rename or remove it. */
const STICKY = 0o1000;

export const mode = (m: number): string => (m & 0o7777).toString(8).padStart(4, '0');

/**
 * Refuses `dir` (FG_ERR_PERMISSION, naming `what`) unless it and every directory above it are safe for this
 * process to write in (see above), making the missing ones on the way (the last with `createMode`, those above it
 * 0700). The walk goes from the root down: each directory is checked before anything is made in it, so a path
 * through another user's directory or symlink makes nothing there either.
 * `privateDir`: the directory must also be unreadable to others (0700; a spool holds records).
 */
export function trustedDir(dir: string, what: string, opts: { createMode?: number; privateDir?: boolean } = {}): void {
  const full = resolve(dir);
  const me = euid();
  const refuse = (why: string) =>
    new FlowgrabError('FG_ERR_PERMISSION', `${what} ${full}: ${why}: refusing to write there`, { op: 'open' });
  for (const d of pathDownTo(full).slice(0, -1)) {
    make(d, 0o700);
    checkAbove(d, me, refuse);
  }
  make(full, opts.createMode ?? 0o700);
  const st = lstatSync(full);
  if (!st.isDirectory()) throw refuse('not a directory (a symlink?)');
  if (st.uid !== me && st.uid !== 0) throw refuse(`it belongs to uid ${st.uid}`);
  if (st.mode & 0o022) throw refuse(`others may write in it (mode ${mode(st.mode)})`);
  if (opts.privateDir && st.mode & 0o077) throw refuse(`others may read it (mode ${mode(st.mode)}; make it 0700)`);
}

/** This process's effective uid (0 where there is none to ask). */
export const euid = (): number => process.geteuid?.() ?? 0;

/**
 * Throws `refuse(why)` unless directory `d`, above what is trusted, is a real directory no other user may change:
 * this process's user's or root's, and writable by nobody else unless it is sticky (see above).
 */
export function checkAbove(d: string, me: number, refuse: (why: string) => Error): void {
  const st = lstatSync(d);
  if (!st.isDirectory()) throw refuse(`${d} above it is not a directory (a symlink?)`);
  checkDir(d, st, 'above it', me, refuse);
}

/**
 * Throws `refuse(why)` when another user could change what directory `d` (stat `st`) holds: it is not this
 * process's user's or root's, or others may write in it and it is not sticky. `where` places it in the message.
 */
export function checkDir(d: string, st: Stats, where: string, me: number, refuse: (why: string) => Error): void {
  if (st.uid !== me && st.uid !== 0) throw refuse(`${d} ${where} belongs to uid ${st.uid}`);
  if (st.mode & 0o022 && !(st.mode & STICKY)) throw refuse(`others may write in ${d} ${where} (mode ${mode(st.mode)})`);
}

/** `/`, then each directory on the way down to `path` (resolved), `path` itself last. */
export function pathDownTo(path: string): string[] {
  const parts = resolve(path)
    .split('/')
    .filter((p) => p !== '');
  return Array.from({ length: parts.length + 1 }, (_, i) => `/${parts.slice(0, i).join('/')}`);
}

/** Makes directory `d` unless something is there already (checked next, whatever it is). */
function make(d: string, createMode: number): void {
  try {
    mkdirSync(d, { mode: createMode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
