/** A names or lease file re-read only when it changed (the device names of domain/names.ts). */
import { statSync } from 'node:fs';
import { readRegularFile } from 'flowgrab';

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
    // A stat (which never blocks) each time; the file is opened only when it changed, a bad one not again until then.
    let stamp = '';
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}|${st.size}`;
    } catch {
      // missing: empty
    }
    if (stamp === this.stamp) return this.data;
    this.stamp = stamp;
    try {
      const text = stamp ? readRegularFile(this.path, WATCHED_FILE_MAX_BYTES) : undefined;
      this.data = text === undefined ? new Map() : this.parse(text);
    } catch {
      this.data = new Map();
    }
    return this.data;
  }
}
