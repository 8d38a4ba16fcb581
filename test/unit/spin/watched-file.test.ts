/** The names and lease files: re-read when changed; a FIFO, a device or a huge file is read as empty, at once. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WATCHED_FILE_MAX_BYTES, WatchedFile } from '../../../examples/spin/io/watched-file.js';
import { boundedScript, built } from '../../helpers/bounded-child.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fg-watched-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const lines = (text: string) =>
  new Map(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );

describe('WatchedFile', () => {
  it('reads a regular file, again when it changes; a missing one is empty', () => {
    const dir = tmp();
    const file = join(dir, 'names');
    const w = new WatchedFile(file, lines);
    expect(w.get().size).toBe(0);
    writeFileSync(file, 'a 1\n');
    expect([...w.get()]).toEqual([['a', '1']]);
    writeFileSync(file, 'a 1\nbb 22\n');
    expect(w.get().get('bb')).toBe('22');
  });

  it('a device or a file over the bound is read as empty', () => {
    const dir = tmp();
    expect(new WatchedFile('/dev/zero', lines).get().size).toBe(0);
    const big = join(dir, 'big');
    writeFileSync(big, 'a 1\n');
    truncateSync(big, WATCHED_FILE_MAX_BYTES + 1);
    expect(new WatchedFile(big, lines).get().size).toBe(0);
  });

  it('a FIFO with nobody writing is read as empty at once (in a process of its own, bounded: a read would block it)', () => {
    const dir = tmp();
    const fifo = join(dir, 'leases');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const said =
      boundedScript(`import { WatchedFile } from ${JSON.stringify(built('examples/spin/io/watched-file.js'))};
      console.log(new WatchedFile(${JSON.stringify(fifo)}, () => new Map([['x', 'y']])).get().size);`);
    expect(said.trim()).toBe('0');
  });
});
