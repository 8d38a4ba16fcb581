/**
 * Directories a privileged process writes into, made so another user cannot
 * redirect what it writes there: the directory itself is a real directory
 * (not a symlink) belonging to this process's user or root and writable by
 * nobody else, and so is every directory above it, unless that one is
 * sticky (like /tmp: there nobody may rename or remove what another user
 * made). Otherwise a user who can write in it, or rename it, could plant a
 * symlink where a file is about to be written, or swap the directory itself.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FlowgrabError } from '../errors.js';

/** The sticky bit: in such a directory only an entry's owner may rename or remove it. */
const STICKY = 0o1000;

const mode = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');

/**
 * Creates `dir` (with `createMode`, its parents 0700 too) when missing; then refuses it (FG_ERR_PERMISSION,
 * naming `what`) unless it and every directory above it are safe for this process to write in (see above).
 * `privateDir`: the directory must also be unreadable to others (0700; a spool holds records).
 */
export function trustedDir(dir: string, what: string, opts: { createMode?: number; privateDir?: boolean } = {}): void {
  const full = resolve(dir);
  mkdirSync(full, { recursive: true, mode: opts.createMode ?? 0o700 });
  const me = process.geteuid?.() ?? 0;
  const refuse = (why: string) =>
    new FlowgrabError('FG_ERR_PERMISSION', `${what} ${full}: ${why}: refusing to write there`, { op: 'open' });
  const st = lstatSync(full);
  if (!st.isDirectory()) throw refuse('not a directory (a symlink?)');
  if (st.uid !== me && st.uid !== 0) throw refuse(`it belongs to uid ${st.uid}`);
  if (st.mode & 0o022) throw refuse(`others may write in it (mode ${mode(st.mode)})`);
  if (opts.privateDir && st.mode & 0o077) throw refuse(`others may read it (mode ${mode(st.mode)}; make it 0700)`);
  for (let d = dirname(full); ; d = dirname(d)) {
    const a = lstatSync(d);
    if (!a.isDirectory()) throw refuse(`${d} above it is not a directory (a symlink?)`);
    if (a.uid !== me && a.uid !== 0) throw refuse(`${d} above it belongs to uid ${a.uid}`);
    if (a.mode & 0o022 && !(a.mode & STICKY)) throw refuse(`others may write in ${d} above it (mode ${mode(a.mode)})`);
    if (d === dirname(d)) break;
  }
}
