/**
 * The exporter's durable spool against real outages: the JetStream server is
 * down while flows end, the exporter is killed with -9 while it spools them;
 * the server comes back, the exporter is started again (and killed with -9
 * once more in the middle of delivering); every DESTROY is in the stream
 * exactly once.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { natsSink } from '../../src/export/nats/index.js';
import { decodeEntry } from '../../src/export/nats/subject.js';
import { readFrames } from '../../src/export/spool/segment.js';
import { floodUdp } from '../../src/testing/flood.js';
import { Netns, uniqueId, waitFor } from '../../src/testing/lab/index.js';
import { CT_RULESET, conntrackTool, type KernelCtEntry } from '../helpers/conntrack-cli.js';
import { FLOWGRAB } from '../helpers/daemon.js';
import { CliProcess, NatsCluster, readStream, streamCount } from '../helpers/nats.js';
import { DestroyLog } from './export-helpers.js';

let cluster: NatsCluster;
let ns: Netns;
let spool: string;
const STREAM = 'FGB';
const procs: CliProcess[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(1);
  ns = await Netns.create(uniqueId('fgnatsb'));
  await ns.exec(['nft', '-f', '-'], { input: CT_RULESET });
  spool = mkdtempSync(join(tmpdir(), 'fg-nats-spool-'));
}, 60_000);
afterAll(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  cluster?.close();
  await ns?.remove();
  rmSync(spool, { recursive: true, force: true });
});

function exporter(): CliProcess {
  const p = new CliProcess([
    FLOWGRAB,
    'export',
    '--nats',
    cluster.urls.join(','),
    '--stream',
    STREAM,
    '--spool',
    spool,
    '--host',
    'r1',
    '--netns',
    ns.name,
    '--active-timeout',
    '0',
    '--set-sysctls',
  ]);
  procs.push(p);
  return p;
}

type Flow = { reason: string; protonum: number; src: string; sport: number; dst: string; dport: number };
const keyOf = (f: Flow) => `${f.protonum} ${f.src}:${f.sport}>${f.dst}:${f.dport}`;
const keyOfCt = (e: KernelCtEntry) =>
  `${e.protonum} ${e.orig.src}:${e.orig.sport ?? 0}>${e.orig.dst}:${e.orig.dport ?? 0}`;

/** The flows in the spool's segment files, read as a second process would (the exporter holds the lock). */
function spooled(): Set<string> {
  const out = new Set<string>();
  for (const f of readdirSync(spool).filter((x) => x.endsWith('.seg'))) {
    const r = readFrames(join(spool, f), 0, 1e6, 1e9, 1 << 20);
    for (const p of r.payloads) {
      const e = p && decodeEntry(p);
      if (e) out.add(keyOf(JSON.parse(Buffer.from(e.data).toString()) as Flow));
    }
  }
  return out;
}

async function flows(count: number, base: number): Promise<void> {
  await floodUdp(ns.name, { count, base });
  await conntrackTool(ns.name, ['-F']);
}

it('servers down, exporter killed -9 while spooling, both back: nothing lost, nothing twice', async () => {
  const nc: NatsConnection = await cluster.client();
  try {
    const a = exporter();
    await waitFor(
      async () => {
        await flows(1, 200);
        return (await streamCount(nc, STREAM)) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: () => `the exporter's first record in the stream\n${a.err}` },
    );
    const probes = await streamCount(nc, STREAM);
    await cluster.killAll();

    const ct = new DestroyLog(ns.name);
    await ct.start();
    // Batches small enough for `conntrack -E` to keep up with the flush's DESTROY burst.
    for (let i = 0; i < 4; i++) await flows(200, 10 + i);
    const destroyed = await ct.stop();
    expect(destroyed.length).toBeGreaterThanOrEqual(400);
    await waitFor(() => destroyed.every((e) => spooled().has(keyOfCt(e))), {
      timeoutMs: 30_000,
      intervalMs: 300,
      what: () => `every ended flow in the spool\n${a.err}`,
    });
    await a.stop('SIGKILL');

    cluster.startNode(0);
    await cluster.waitHealthy();
    const b = exporter();
    await waitFor(async () => (await streamCount(nc, STREAM)) > probes, {
      timeoutMs: 30_000,
      intervalMs: 20,
      what: () => `the restarted exporter delivering the spool\n${b.err}`,
    });
    // Killed again in the middle of delivering: what it had published and not yet recorded goes again.
    await b.stop('SIGKILL');
    const c = exporter();
    await waitFor(() => c.err.includes('msg="export started"'), { timeoutMs: 20_000, what: () => `start\n${c.err}` });
    await waitFor(async () => (await streamCount(nc, STREAM)) >= probes + destroyed.length, {
      timeoutMs: 60_000,
      intervalMs: 300,
      what: () => `all ${destroyed.length} flows in the stream\n${c.err}`,
    });
    expect(await c.stop('SIGTERM')).toBe(0);
    expect(c.err).toMatch(/msg="export finished".* dropped=0/);

    const stored = await readStream(nc, STREAM);
    const counts = new Map<string, number>();
    for (const m of stored) counts.set(keyOf(m.data as Flow), (counts.get(keyOf(m.data as Flow)) ?? 0) + 1);
    for (const e of destroyed) expect(counts.get(keyOfCt(e)), `${e.line} stored once`).toBe(1);
    // And nothing stored twice, whether conntrack -E saw it or not.
    expect(counts.size).toBe(stored.length);
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(stored.length);
  } finally {
    await nc.close();
  }
}, 180_000);

it('starts with no server reachable: spools from the first record and delivers once a server answers', async () => {
  await cluster.killAll();
  const dir = mkdtempSync(join(tmpdir(), 'fg-nats-cold-'));
  const sink = await natsSink({
    servers: cluster.urls,
    name: 'FGCOLD',
    subject: 'cold.{host}',
    spoolDir: dir,
    host: 'cold',
  });
  const nc = { conn: undefined as NatsConnection | undefined };
  try {
    for (let i = 0; i < 100; i++) sink.write({ type: 'count', key: i, count: 1 });
    await waitFor(() => sink.stats().spooled === 100, { what: 'records spooled with no server' });
    expect(sink.stats()).toMatchObject({ connected: false, sent: 0, dropped: 0 });
    cluster.startNode(0);
    await cluster.waitHealthy();
    nc.conn = await cluster.client();
    const conn = nc.conn;
    await waitFor(async () => (await streamCount(conn, 'FGCOLD')) === 100 && sink.stats().spooled === 0, {
      timeoutMs: 30_000,
      what: 'delivery once the server is up',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(sink.stats())}`);
    });
    const stored = await readStream(conn, 'FGCOLD');
    expect(stored.map((m) => m.data.key)).toEqual([...Array(100).keys()]);
  } finally {
    await sink.close();
    await nc.conn?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
