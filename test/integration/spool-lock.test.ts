/**
 * One process per spool directory, under processes racing for it: of four
 * opening one spool at once, one gets it and the others are told it is in
 * use (by whom); the winner killed with SIGKILL, the next opener takes the
 * directory at once (the kernel dropped the lock with the process), and a
 * lock file naming a live process that does not hold the lock (a recycled
 * pid) does not keep anyone out.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/export/spool/spool.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { DIST } from '../helpers/daemon.js';

const root = mkdtempSync(join(tmpdir(), 'fg-spool-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A process that, told to go, opens the spool in `dir`, prints ok/busy, and keeps it open until stdin ends. */
function opener(dir: string) {
  const src = `
    const { Spool } = await import(${JSON.stringify(join(DIST, 'src/export/spool/spool.js'))});
    process.stdout.write('ready\\n');
    await new Promise((go) => process.stdin.once('data', go));
    let said;
    try {
      new Spool({ dir: ${JSON.stringify(dir)} });
      said = 'ok';
    } catch (err) {
      said = err.code === 'FG_ERR_BUSY' ? 'busy ' + err.message : 'error ' + err.message;
    }
    process.stdout.write(said + '\\n');
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? 0,
    ready: () => out.startsWith('ready\n'),
    go: () => child.stdin.write('go\n'),
    said: () => out.replace(/^ready\n/, '').trim(),
    kill: () => {
      child.kill('SIGKILL');
      return exited;
    },
    end: () => {
      child.stdin.end();
      return exited;
    },
  };
}

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

  it('a lock file that names a live process not holding it keeps nobody out', () => {
    const dir = join(root, 'recycled');
    new Spool({ dir }).close();
    writeFileSync(join(dir, 'lock'), `${process.pid}\n`); // alive, but holds no lock on it
    const s = new Spool({ dir });
    expect(() => new Spool({ dir })).toThrow(`spool ${dir} is in use by process ${process.pid}`);
    s.close();
  });
});
