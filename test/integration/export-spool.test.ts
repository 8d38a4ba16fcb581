/**
 * The durable spool behind the MQTT sink: `flowgrab export --mqtt URL --spool
 * DIR` with the broker down spools what it is given, is killed with -9, and
 * a restart with the broker up publishes every record, in order, once.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ipfixSink, PATH_MESSAGE_MAX } from '../../src/export/collector.js';
import { readFrames } from '../../src/export/spool/segment.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { FLOWGRAB } from '../helpers/daemon.js';
import { freePort, Mosquitto, MosquittoSub } from '../helpers/mosquitto.js';
import { CliProcess, freeTcpPort } from '../helpers/nats.js';
import { udpFlow } from '../helpers/records.js';
import { readMessage } from '../unit/export/wire.js';

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
  await waitFor(() => spooledFrames(spool) === 500, { timeoutMs: 20_000, what: () => `500 records spooled\n${a.err}` });
  await a.stop('SIGKILL');

  const broker = new Mosquitto(port);
  await broker.start();
  const sub = await new MosquittoSub(port, 'fgspool/#').ready();
  try {
    const b = exporter(recording('b.ndjson', 0));
    await waitFor(() => sub.messages.length >= 500 && b.err.includes('export started'), {
      timeoutMs: 20_000,
      what: () => `500 messages\n${b.err}`,
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

const flow = (i: number) => udpFlow(i, 20_000);

it('IPFIX over TCP: records spooled while no collector listens survive the exporter and reach a later one, templates first, sequence from 0', async () => {
  const port = await freeTcpPort();
  const spool = { dir: join(dir, 'ipfix-spool') };
  const first = ipfixSink({ collector: `127.0.0.1:${port}`, transport: 'tcp', maxReconnectMs: 200, spool });
  // TCP has no datagram to fit: messages as large as the largest UDP one.
  expect(first.stats().messageBytes).toBe(PATH_MESSAGE_MAX);
  for (let i = 0; i < 200; i++) first.write(flow(i));
  await first.flush();
  expect(first.stats()).toMatchObject({ received: 200, sent: 0, dropped: 0 });
  expect(first.stats().queued).toBe(200);
  await first.close();

  const msgs: Buffer[] = [];
  const conns = new Set<Socket>();
  const server = createServer((c) => {
    conns.add(c);
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= buf.readUInt16BE(2)) {
        msgs.push(buf.subarray(0, buf.readUInt16BE(2)));
        buf = buf.subarray(buf.readUInt16BE(2));
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const second = ipfixSink({ collector: `127.0.0.1:${port}`, transport: 'tcp', maxReconnectMs: 200, spool });
  try {
    const records = () =>
      msgs
        .map(readMessage)
        .reduce((n, m) => n + m.sets.filter((s) => s.id === 256).reduce((k, s) => k + s.body.length / 77, 0), 0);
    await waitFor(() => records() === 200, { timeoutMs: 10_000, what: '200 spooled records at the collector' });
    const decoded = msgs.map(readMessage);
    expect(decoded[0].sets.map((s) => s.id)).toEqual([2]);
    let seq = 0;
    for (const m of decoded) {
      expect(m.header.readUInt32BE(8)).toBe(seq);
      seq += m.sets.filter((s) => s.id === 256).reduce((k, s) => k + s.body.length / 77, 0);
    }
    await second.close();
    expect(second.stats()).toMatchObject({ sent: 200, dropped: 0, queued: 0 });
  } finally {
    await second.close();
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
