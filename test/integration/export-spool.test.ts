/**
 * The durable spool behind the MQTT sink: `flowgrab export --mqtt URL --spool
 * DIR` with the broker down spools what it is given, is killed with -9, and
 * a restart with the broker up publishes every record, in order, once.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFrames } from '../../src/export/spool/segment.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { FLOWGRAB } from '../helpers/daemon.js';
import { freePort, Mosquitto, MosquittoSub } from '../helpers/mosquitto.js';
import { CliProcess } from '../helpers/nats.js';

let dir: string;
const procs: CliProcess[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fg-export-spool-'));
});
afterAll(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function recording(name: string, n: number): string {
  const file = join(dir, name);
  const header = { flowgrab: 'test', version: 1, host: 't', started: 0, sources: [] };
  const lines = [header, ...Array.from({ length: n }, (_, i) => ({ type: 'count', key: i, count: i * 2, ts: i }))];
  writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  return file;
}

function spooledFrames(spool: string): number {
  let n = 0;
  for (const f of readdirSync(spool).filter((x) => x.endsWith('.seg')))
    n += readFrames(join(spool, f), 0, 1e6, 1e9, 1 << 20).payloads.length;
  return n;
}

it('MQTT: broker down, exporter killed -9 with records spooled, restarted with the broker up: all delivered once, in order', async () => {
  const port = await freePort();
  const spool = join(dir, 'spool');
  const exporter = (file: string) => {
    const p = new CliProcess([
      FLOWGRAB,
      'export',
      '--mqtt',
      `mqtt://127.0.0.1:${port}`,
      '--topic',
      'fgspool/{type}',
      '--qos',
      '1',
      '--spool',
      spool,
      `replay(file=${file})`,
    ]);
    procs.push(p);
    return p;
  };
  const a = exporter(recording('a.ndjson', 500));
  await waitFor(() => spooledFrames(spool) === 500, { timeoutMs: 20_000, what: `500 records spooled\n${a.err}` });
  await a.stop('SIGKILL');

  const broker = new Mosquitto(port);
  await broker.start();
  const sub = await new MosquittoSub(port, 'fgspool/#').ready();
  try {
    const b = exporter(recording('b.ndjson', 0));
    await waitFor(() => sub.messages.length >= 500 && b.err.includes('export started'), {
      timeoutMs: 20_000,
      what: `500 messages\n${b.err}`,
    });
    expect(await b.stop('SIGTERM')).toBe(0);
    expect(b.err).toMatch(/msg="export started".*recovered=500/);
    expect(b.err).toMatch(/msg="export finished".* sent=500 dropped=0/);
    expect(sub.messages.map((m) => (JSON.parse(m.payload) as { key: number }).key)).toEqual([...Array(500).keys()]);
  } finally {
    await sub.stop();
    await broker.dispose();
  }
});
