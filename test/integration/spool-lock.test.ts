/**
 * One process per spool directory, under processes racing for it: of four
 * opening one spool at once, one gets it and the others are told it is in
 * use (by whom); the winner killed with SIGKILL, the next opener takes the
 * directory at once (the kernel dropped the lock with the process), and a
 * lock file naming a live process that does not hold the lock (a recycled
 * pid) does not keep anyone out.
 */
import { linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/export/spool/spool.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { DIST } from '../helpers/daemon.js';
import { racer } from '../helpers/racer.js';

const root = mkdtempSync(join(tmpdir(), 'fg-spool-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A process that, told to go, opens the spool in `dir` and keeps it open (test/helpers/racer.ts). */
const opener = (dir: string) =>
  racer(
    `const { Spool } = await import(${JSON.stringify(join(DIST, 'src/export/spool/spool.js'))});`,
    `new Spool({ dir: ${JSON.stringify(dir)} }); return 'ok';`,
  );

describe('spool lock', () => {
  it('four processes opening one spool at once: one has it; killed, the next takes it at once', async () => {
    const dir = join(root, 'race');
    const procs = Array.from({ length: 4 }, () => opener(dir));
    try {
      await waitFor(() => procs.every((p) => p.ready()), { timeoutMs: 60_000, what: 'every opener to load' });
      for (const p of procs) p.go();
      await waitFor(() => procs.every((p) => p.said() !== ''), { timeoutMs: 60_000, what: 'every opener to answer' });
      const winners = procs.filter((p) => p.said() === 'ok');
      expect(winners.length).toBe(1);
      for (const p of procs)
        if (p !== winners[0]) expect(p.said()).toBe(`busy spool ${dir} is in use by process ${winners[0].pid}`);
      await winners[0].kill();
      const s = new Spool({ dir });
      s.close();
    } finally {
      await Promise.all(procs.map((p) => p.end()));
    }
  });

  it('a lock file with another name (a hard link to someone else’s file) is refused, not truncated', () => {
    const dir = join(root, 'linked');
    new Spool({ dir }).close();
    const theirs = join(root, 'theirs.txt');
    writeFileSync(theirs, 'precious\n');
    linkSync(theirs, join(dir, 'lock'));
    expect(() => new Spool({ dir })).toThrow(/hard links/);
    expect(readFileSync(theirs, 'utf8')).toBe('precious\n');
  });

  it('a lock file that names a live process not holding it keeps nobody out', () => {
    const dir = join(root, 'recycled');
    new Spool({ dir }).close();
    writeFileSync(join(dir, 'lock'), `${process.pid}\n`); // alive, but holds no lock on it
    const s = new Spool({ dir });
    expect(() => new Spool({ dir })).toThrow(`spool ${dir} is in use by process ${process.pid}`);
    s.close();
  });
});
