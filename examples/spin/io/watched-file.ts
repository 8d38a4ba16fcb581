/** A names or lease file re-read only when it changed (the device names of domain/names.ts). */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/** The largest names or lease file read (a lease file of 10 000 devices is under 1 MiB). */
export const WATCHED_FILE_MAX_BYTES = 16 << 20;

/**
 * Reads a file again only when it changed (mtime and size); a missing file is empty, and so is one that is not a
 * regular file (a FIFO would block the app for good, a device such as /dev/zero never end) or is larger than
 * WATCHED_FILE_MAX_BYTES.
 */
export class WatchedFile {
  private stamp = '';
  private data = new Map<string, string>();
  constructor(
    private readonly path: string | undefined,
    private readonly parse: (text: string) => Map<string, string>,
  ) {}
  get(): Map<string, string> {
    if (!this.path) return this.data;
    let fd: number | undefined;
    try {
      // Opened without blocking, then judged by what was opened (not by a stat of the name before).
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > WATCHED_FILE_MAX_BYTES) throw new Error('not a names file');
      const stamp = `${st.mtimeMs}|${st.size}`;
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        this.data = this.parse(readFileSync(fd, 'utf8'));
      }
    } catch {
      this.stamp = '';
      this.data = new Map();
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return this.data;
  }
}
