/**
 * Files that decide what a privileged process lets others do (the daemon's
 * policy, SPIN's logins), read the way sshd's StrictModes reads its keys: a
 * user who could change such a file, or swap it or a directory above it,
 * could grant themselves anything.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
  type Stats,
  statSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FlowgrabError } from '../errors.js';
import { checkAbove, euid, mode, STICKY } from './trusted-dir.js';

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
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse('not a regular file');
    if (st.uid !== me && st.uid !== 0) throw refuse(`it belongs to uid ${st.uid}`);
    if (st.mode & 0o022) throw refuse(`others may write it (mode ${mode(st.mode)})`);
    if (opts.secret && st.mode & 0o004) throw refuse(`everyone may read it (mode ${mode(st.mode)}; chmod o-r)`);
    const parts = dirname(whereOpen(fd, refuse))
      .split('/')
      .filter((p) => p !== '');
    for (let i = 0; i <= parts.length; i++) checkAbove(`/${parts.slice(0, i).join('/')}`, me, refuse);
    if (st.size > opts.maxBytes) throw refuse(`it is over ${opts.maxBytes} bytes`);
    // One byte past its size at most: a file still being written is not taken half-way.
    const buf = Buffer.allocUnsafe(st.size + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > st.size) throw refuse('it grew while it was read (try again once it is written)');
    return buf.toString('utf8', 0, n);
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
  const parts = resolve(file)
    .split('/')
    .filter((p) => p !== '');
  for (let i = 1; i <= parts.length; i++) {
    const p = `/${parts.slice(0, i).join('/')}`;
    let l: Stats;
    try {
      l = lstatSync(p);
    } catch {
      return; // missing: the open says so
    }
    if (l.isSymbolicLink() && l.uid !== me && l.uid !== 0)
      throw refuse(`${p} on its path is a symlink of uid ${l.uid}`);
    if (i === parts.length) return;
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      return; // a dangling symlink: the open says so
    }
    if (!st.isDirectory()) return; // the open says so
    if (st.uid !== me && st.uid !== 0) throw refuse(`${p} on its path belongs to uid ${st.uid}`);
    if (st.mode & 0o022 && !(st.mode & STICKY))
      throw refuse(`others may write in ${p} on its path (mode ${mode(st.mode)})`);
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
