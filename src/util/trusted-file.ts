/**
 * Files that decide what a privileged process lets others do (the daemon's
 * policy, SPIN's logins), read the way sshd's StrictModes reads its keys: a
 * user who could change such a file, or swap it or a directory above it,
 * could grant themselves anything.
 */
import { closeSync, lstatSync, readlinkSync, type Stats, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { FlowgrabError } from '../errors.js';
import { openRegular, readOpen } from './regular-file.js';
import { checkAbove, checkDir, euid, mode, pathDownTo } from './trusted-dir.js';

/**
 * The text of `file`, refused (FG_ERR_PERMISSION, naming `what`) unless it is a regular file of at most `maxBytes`
 * belonging to this process's user or root, writable by nobody else (and, when `secret`, not readable by everyone),
 * and every directory above it, where the kernel found it (symlinks followed), passes trustedDir's rule for the
 * directories above. Before it is opened, the path as named must pass the same rule, and any symlink on it must be
 * this user's or root's: whoever could change the path could choose which file is read (or open a device). It is
 * checked again once open, so nothing swapped in after a check is read, and opened without blocking, so a FIFO
 * cannot hang the reader. Errors opening it (ENOENT, EACCES) are thrown as they are.
 */
export function readTrustedFile(file: string, what: string, opts: { maxBytes: number; secret?: boolean }): string {
  const refuse = (why: string) =>
    new FlowgrabError('FG_ERR_PERMISSION', `${what} ${file}: ${why}: refusing to read it`, { op: 'open' });
  const me = euid();
  checkNamed(file, me, refuse);
  const f = openRegular(file);
  if (!f) throw refuse('not a regular file');
  const { fd, st } = f;
  try {
    if (st.uid !== me && st.uid !== 0) throw refuse(`it belongs to uid ${st.uid}`);
    if (st.mode & 0o022) throw refuse(`others may write it (mode ${mode(st.mode)})`);
    if (opts.secret && st.mode & 0o004) throw refuse(`everyone may read it (mode ${mode(st.mode)}; chmod o-r)`);
    for (const d of pathDownTo(dirname(whereOpen(fd, refuse)))) checkAbove(d, me, refuse);
    if (st.size > opts.maxBytes) throw refuse(`it is over ${opts.maxBytes} bytes`);
    const text = readOpen(fd, st.size);
    if (text === undefined) throw refuse('it grew while it was read (try again once it is written)');
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * The path as named, before anything is opened: each directory on it as reached (symlinks followed) is this
 * user's or root's and writable by nobody else unless sticky, and a symlink on it is this user's or root's (in a
 * sticky directory such as /tmp, another user's symlink would choose where the name leads).
 */
function checkNamed(file: string, me: number, refuse: (why: string) => Error): void {
  const path = pathDownTo(file).slice(1);
  for (const [i, p] of path.entries()) {
    let l: Stats;
    try {
      l = lstatSync(p);
    } catch {
      return; // missing: the open says so
    }
    if (l.isSymbolicLink() && l.uid !== me && l.uid !== 0)
      throw refuse(`${p} on its path is a symlink of uid ${l.uid}`);
    if (i === path.length - 1) return;
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      return; // a dangling symlink: the open says so
    }
    if (!st.isDirectory()) return; // the open says so
    checkDir(p, st, 'on its path', me, refuse);
  }
}

/** Where the open file lies, as the kernel found it (/proc/self/fd). */
function whereOpen(fd: number, refuse: (why: string) => Error): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    throw refuse('cannot tell where it lies (is /proc mounted?)');
  }
}
