// kill -9 of a process that is writing to and delivering from a spool: the
// next open has every record the process had written (and said so), in order,
// once, from at most a little before the last position it confirmed.
// Runs the built spool (dist/): `npx tsc -p tsconfig.json` first.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Spool } from '../../../src/export/spool/index.js';

const built = resolve('dist/src/export/spool/index.js');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// The child appends 200 records a turn and confirms delivery of 150, then reports both counts (after the
// turn's write), so everything it reports is on disk when it is killed.
const child = `
const { Spool } = await import(process.argv[1]);
const s = new Spool({ dir: process.argv[2], segmentBytes: 64 * 1024 });
let n = 0, acked = 0;
function turn() {
  for (let k = 0; k < 200; k++) s.append(Buffer.from(JSON.stringify({ i: n++ })));
  for (const e of s.next(150)) { s.ack(e.seq); acked++; }
  s.flush();
  process.stdout.write(n + ' ' + acked + '\\n');
  setImmediate(turn);
}
turn();
`;

it('loses nothing the killed process had written and replays no more than its last confirmations', async () => {
  expect(existsSync(built), 'build first: npx tsc -p tsconfig.json').toBe(true);
  const dir = mkdtempSync(join(tmpdir(), 'fg-spool-crash-'));
  dirs.push(dir);
  const p = spawn(process.execPath, ['--input-type=module', '-e', child, built, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let written = 0;
  let acked = 0;
  let err = '';
  p.stderr.on('data', (d) => {
    err += d;
  });
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`child did not get far: ${err}`)), 20_000);
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) [written, acked] = l.split(' ').map(Number);
      if (written >= 30_000) {
        clearTimeout(t);
        p.kill('SIGKILL');
        res();
      }
    });
    p.on('exit', () => rej(new Error(`child exited early: ${err}`)));
  });
  await new Promise((r) => p.once('close', r));
  const s = new Spool({ dir });
  const got: number[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    const b = s.next(1000);
    if (b.length === 0) break;
    for (const e of b) {
      got.push((JSON.parse(e.payload.toString()) as { i: number }).i);
      s.ack(e.seq);
    }
  }
  s.close();
  expect(got.length).toBeGreaterThan(0);
  const first = got[0];
  // From at most what was confirmed (replays allowed: the position is saved every 200 ms) ...
  expect(first).toBeLessThanOrEqual(acked);
  // ... contiguous and in order (nothing lost, nothing twice) ...
  expect(got).toEqual([...Array(got.length).keys()].map((i) => i + first));
  // ... up to at least everything the child said it had written.
  expect(first + got.length).toBeGreaterThanOrEqual(written);
});
