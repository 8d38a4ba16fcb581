/** NDJSON sink: one JSON line per record, rotation by size without splitting lines, bad records counted. */
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  constants,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ndjsonSink } from '../../../src/export/ndjson.js';
import { boundedScript, built } from '../../helpers/bounded-child.js';
import { until } from '../../helpers/wait.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ndjsonSink', () => {
  it('rotates before a file would pass rotateBytes, keeps `keep` files, and loses no line', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-'));
    const file = join(dir, 'flows.ndjson');
    const sink = ndjsonSink({ file, rotateBytes: 1000, keep: 3 });
    for (let i = 0; i < 100; i++) sink.write({ type: 'flow', i, pad: 'x'.repeat(i % 7) });
    await sink.close();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['flows.ndjson', 'flows.ndjson.1', 'flows.ndjson.2', 'flows.ndjson.3']);
    const lines: { i: number }[] = [];
    for (const f of ['flows.ndjson.3', 'flows.ndjson.2', 'flows.ndjson.1', 'flows.ndjson']) {
      expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(1000);
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      lines.push(
        ...text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      );
    }
    // The oldest files were removed; what is left is the newest records, in order, none split.
    const is = lines.map((l) => l.i);
    expect(is).toEqual(Array.from({ length: is.length }, (_, k) => 100 - is.length + k));
    expect(sink.stats()).toMatchObject({ received: 100, sent: 100, dropped: 0, rejected: 0 });
  });

  it('makes its files 0600, and refuses a symlink or another user’s file in its place', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-'));
    const file = join(dir, 'flows.ndjson');
    const sink = ndjsonSink({ file, rotateBytes: 1000, keep: 2 });
    for (let i = 0; i < 50; i++) sink.write({ type: 'flow', i });
    await sink.close();
    for (const f of readdirSync(dir)) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'untouched\n');
    const link = join(dir, 'link.ndjson');
    symlinkSync(victim, link);
    expect(() => ndjsonSink({ file: link })).toThrow(/cannot open .*link\.ndjson: .*ELOOP/);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
    // Made by someone else (a shared directory): root's records would be theirs to read.
    if (process.geteuid?.() === 0) {
      const planted = join(dir, 'planted.ndjson');
      writeFileSync(planted, '', { mode: 0o666 });
      chownSync(planted, 65534, 65534);
      expect(() => ndjsonSink({ file: planted })).toThrow(/belongs to uid 65534, not to this process/);
      expect(statSync(planted).size).toBe(0);
    }
  });

  it('refuses a FIFO or a second name of another file in its place, at once (a FIFO with no reader would block)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-fifo-'));
    try {
      const fifo = join(dir, 'flows.ndjson');
      execFileSync('mkfifo', ['-m', '600', fifo]);
      // Nobody reading: refused at once (ENXIO), not a hang. In a process of its own (the built sink), bounded: a
      // blocking open would hold this one for good.
      const said = boundedScript(`import { ndjsonSink } from ${JSON.stringify(built('src/export/ndjson.js'))};
        try { ndjsonSink({ file: ${JSON.stringify(fifo)} }); console.log('opened'); } catch (e) { console.log(e.message); }`);
      expect(said).toMatch(/ENXIO/);
      // Someone reading (who would get every record): refused too.
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        expect(() => ndjsonSink({ file: fifo })).toThrow(/not a regular file \(a FIFO\?\)/);
      } finally {
        closeSync(reader);
      }
      const other = join(dir, 'other');
      writeFileSync(other, 'not records\n');
      const second = join(dir, 'second.ndjson');
      linkSync(other, second);
      expect(() => ndjsonSink({ file: second })).toThrow(/has 2 names \(a hard link/);
      expect(readFileSync(other, 'utf8')).toBe('not records\n');
      // A device is fine.
      await ndjsonSink({ file: '/dev/null' }).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a rotation that fails (something in the way) is counted and tried again a second later, not per record', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-'));
    const file = join(dir, 'flows.ndjson');
    mkdirSync(join(dir, 'flows.ndjson.2')); // where the oldest kept file goes: a directory cannot be removed so
    const sink = ndjsonSink({ file, rotateBytes: 300, keep: 2 });
    for (let i = 0; i < 2000; i++) sink.write({ type: 'flow', i });
    await sink.close();
    const st = sink.stats();
    expect(st.lastError).toMatch(/^rotate: /);
    expect(st.errors).toBeLessThanOrEqual(3); // one per second at most (a slow machine may see a second or two)
    expect(st).toMatchObject({ received: 2000, sent: 2000, dropped: 0 });
  });

  it('counts records that cannot be serialised and goes on', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-'));
    const file = join(dir, 'f.ndjson');
    const sink = ndjsonSink({ file });
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    sink.write({ a: 1 });
    sink.write(loop);
    sink.write({ big: 10n });
    sink.write({ a: 2 });
    await sink.close();
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{"a":2}\n');
    expect(sink.stats()).toMatchObject({ sent: 2, rejected: 2 });
    expect(sink.stats().lastError).toMatch(/not serialisable/);
  });

  it('survives its directory going away mid-export: records counted as dropped, written again once it is back', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-'));
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const file = join(logs, 'flows.ndjson');
    const sink = ndjsonSink({ file, rotateBytes: 500, keep: 2 });
    for (let i = 0; i < 10; i++) sink.write({ type: 'flow', i });
    await sink.flush();
    rmSync(logs, { recursive: true });
    // The next rotation cannot rename or reopen: nothing throws, the records are dropped and counted.
    for (let i = 10; i < 60; i++) sink.write({ type: 'flow', i });
    await sink.flush();
    const gone = sink.stats();
    expect(gone.dropped).toBeGreaterThan(0);
    expect(gone.sent + gone.dropped).toBe(60);
    expect(gone.lastError).toMatch(/^(open|rotate|write): /);
    // The directory comes back: within a second or so the sink writes there again.
    mkdirSync(logs);
    let n = 60;
    await until(() => {
      sink.write({ type: 'flow', i: n++ });
      void sink.flush();
      return existsSync(file) && readFileSync(file, 'utf8').length > 0;
    }, 'the file opened again');
    await sink.close();
    const st = sink.stats();
    expect(st.sent + st.dropped).toBe(n);
    expect(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).i)
        .at(-1),
    ).toBe(n - 1);
  });

  it('refuses bad options with clear errors', () => {
    dir = mkdtempSync(join(tmpdir(), 'fg-ndjson-'));
    expect(() => ndjsonSink({ rotateBytes: 100 })).toThrow(/rotation needs a file/);
    expect(() => ndjsonSink({ file: join(dir, 'x'), keep: 0 })).toThrow(/keep must be/);
    expect(() => ndjsonSink({ file: join(dir, 'no/such/dir/x') })).toThrow(/cannot open/);
  });
});
