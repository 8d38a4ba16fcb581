/**
 * Reading a file someone else names, without being held up by what it
 * turns out to be. It is opened without blocking (a FIFO with no writer
 * would block the reader for good) and never as a controlling terminal, and
 * judged by what was opened, not by a stat of the name first (the name can
 * be swapped in between). Only a regular file is read, and only as far as
 * the size it had when opened (a device such as /dev/zero never ends).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** An open regular file: its fd (the caller closes it) and its stat. */
export interface OpenRegular {
  fd: number;
  st: Stats;
}

/** Opens `path`; undefined (closed again) when it is not a regular file. Errors opening it are thrown as they are. */
export function openRegular(path: string): OpenRegular | undefined {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (st.isFile()) return { fd, st };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  closeSync(fd);
  return undefined;
}

/**
 * The text of an open file of `size` bytes (its size when opened), reading one byte past it at most; undefined
 * when there was more (it grew while being read: a file still being written is not taken half-way).
 */
export function readOpen(fd: number, size: number): string | undefined {
  const buf = Buffer.allocUnsafe(size + 1);
  let n = 0;
  for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
  return n > size ? undefined : buf.toString('utf8', 0, n);
}

/**
 * The text of `path` when it is a regular file of at most `maxBytes`, else undefined (not a regular file, too
 * large, or growing as it was read). Errors opening it (ENOENT, EACCES) are thrown as they are.
 */
export function readRegularFile(path: string, maxBytes: number): string | undefined {
  const f = openRegular(path);
  if (!f) return undefined;
  try {
    return f.st.size > maxBytes ? undefined : readOpen(f.fd, f.st.size);
  } finally {
    closeSync(f.fd);
  }
}
