/**
 * One process at a time: an exclusive flock(2) on a lock file, held by an
 * open descriptor for as long as the holder runs. The kernel drops it when
 * the holder dies, however it dies: there is no stale lock to judge (no pid
 * to test, no recycled pid to mistake for the owner), and two processes
 * racing for it never both win. The file says the holder's pid, for the
 * message the loser gets; it is removed on release. (Here beside the koffi
 * seam, syscall.ts, for flock(2): Node has none.)
 */
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { FlowgrabError } from '../errors.js';
import { flockExclusive } from './syscall.js';

export interface FileLock {
  /** Removes the lock file and lets go of the lock (idempotent). */
  release(): void;
}

/** Attempts when the file is replaced between our open and our lock (a holder releasing meanwhile). */
const TRIES = 5;

/**
 * Takes the lock on `path` (made 0600 when missing; never through a symlink) or throws FG_ERR_BUSY naming the
 * holder; `what` names the locked thing in that message ("spool /var/spool/x").
 */
export function lockFile(path: string, what: string, op: string): FileLock {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    let held = false;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) {
        throw new FlowgrabError('FG_ERR_INVALID_STATE', `${what}: ${path} is not a regular file`, { op });
      }
      // A second name for it (a hard link someone made to a file of theirs) would have us truncate that file.
      if (st.nlink > 1) {
        throw new FlowgrabError('FG_ERR_INVALID_STATE', `${what}: ${path} has other names (hard links)`, { op });
      }
      if (!flockExclusive(fd)) {
        const holder = readHolder(fd);
        throw new FlowgrabError('FG_ERR_BUSY', `${what} is in use by process ${holder ?? '(unknown)'}`, { op });
      }
      // A holder that released between our open and our lock removed the file: ours may be a name-less inode
      // that someone else's new file has replaced. Only the file the path names now counts.
      if (!samePath(fd, path)) continue;
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
      held = true;
      return release(fd, path);
    } finally {
      if (!held) closeSync(fd);
    }
  }
  throw new FlowgrabError('FG_ERR_BUSY', `${what}: could not take the lock ${path}`, { op });
}

function release(fd: number, path: string): FileLock {
  let done = false;
  return {
    release() {
      if (done) return;
      done = true;
      try {
        // Removed while still held: whoever opens the path next makes a new file and finds it free.
        if (samePath(fd, path)) unlinkSync(path);
      } finally {
        closeSync(fd);
      }
    },
  };
}

function samePath(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = lstatSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** Waits between two reads of a holder that has the lock but has not yet written its pid (microseconds, usually). */
const HOLDER_WAIT_MS = 1;
const HOLDER_READS = 50;

/** The holder's pid: what the file says once it names a live process (a new holder writes it just after locking). */
function readHolder(fd: number): number | undefined {
  const b = Buffer.alloc(32);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < HOLDER_READS; i++) {
    const n = readSync(fd, b, 0, b.length, 0);
    const pid = Number(b.subarray(0, n).toString('latin1').trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) return pid;
    Atomics.wait(pause, 0, 0, HOLDER_WAIT_MS);
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
