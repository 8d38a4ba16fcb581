/** A names or lease file re-read only when it changed (the device names of domain/names.ts). */
import { readFileSync, statSync } from 'node:fs';

/** Reads a file again only when it changed (mtime and size); a missing file is empty. */
export class WatchedFile {
  private stamp = '';
  private data = new Map<string, string>();
  constructor(
    private readonly path: string | undefined,
    private readonly parse: (text: string) => Map<string, string>,
  ) {}
  get(): Map<string, string> {
    if (!this.path) return this.data;
    try {
      const st = statSync(this.path);
      const stamp = `${st.mtimeMs}|${st.size}`;
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        this.data = this.parse(readFileSync(this.path, 'utf8'));
      }
    } catch {
      this.stamp = '';
      this.data = new Map();
    }
    return this.data;
  }
}
