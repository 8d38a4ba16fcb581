/**
 * A fleet exporter into a three-node JetStream cluster (Debian's
 * nats-server) with a replicated stream: flows generated in a namespace of
 * the test's own, one node killed with SIGKILL in the middle of the stream;
 * every flow that `conntrack -L` listed just before `conntrack -F` ended it
 * is in the stream exactly once, each message the line `--ndjson` would
 * write, with its Nats-Msg-Id. (`conntrack -E` is no oracle here: on a flush
 * burst it hits ENOBUFS and loses two thirds of the DESTROYs even with a
 * 64 MiB buffer, measured on this kernel.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { floodUdp } from '../../src/testing/flood.js';
import { Netns, uniqueId, waitFor } from '../../src/testing/lab/index.js';
import { CT_RULESET, conntrackTool, kernelTable } from '../helpers/conntrack-cli.js';
import { FLOWGRAB } from '../helpers/daemon.js';
import { CliProcess, NatsCluster, readStream, streamCount } from '../helpers/nats.js';

let cluster: NatsCluster;
let ns: Netns;
let nc: NatsConnection;
let spool: string;
const STREAM = 'FGA';

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  ns = await Netns.create(uniqueId('fgnats'));
  // A rule that uses conntrack, so the namespace tracks the flood's flows.
  await ns.exec(['nft', '-f', '-'], { input: CT_RULESET });
  nc = await cluster.client();
  spool = mkdtempSync(join(tmpdir(), 'fg-nats-spool-'));
}, 60_000);
afterAll(async () => {
  await nc?.close().catch(() => undefined);
  cluster?.close();
  await ns?.remove();
  rmSync(spool, { recursive: true, force: true });
});

it('every DESTROY is in the 3-replica stream exactly once, with a node killed mid-stream', async () => {
  const cli = new CliProcess([
    FLOWGRAB,
    'export',
    '--nats',
    cluster.urls.join(','),
    '--subject',
    'flowgrab.{host}.{source}.{netns}',
    '--stream',
    STREAM,
    '--replicas',
    '3',
    '--spool',
    spool,
    '--host',
    'router-a',
    '--netns',
    ns.name,
    '--active-timeout',
    '0',
    '--set-sysctls',
  ]);
  try {
    // Ready when a probe flow has gone all the way into the stream (the stream was created by the exporter).
    await waitFor(
      async () => {
        await floodUdp(ns.name, { count: 1, base: 200 });
        await conntrackTool(ns.name, ['-F']);
        return (await streamCount(nc, STREAM)) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: () => `the exporter's first record in the stream\n${cli.err}` },
    );
    const probes = await streamCount(nc, STREAM);
    // What the flush ends: the table as conntrack -L lists it just before -F (a dump loses nothing).
    const destroyed: Awaited<ReturnType<typeof kernelTable>> = [];
    await floodUdp(ns.name, { count: 500, base: 10 });
    destroyed.push(...(await kernelTable(ns.name)));
    await conntrackTool(ns.name, ['-F']);
    await waitFor(async () => (await streamCount(nc, STREAM)) >= probes + 100, {
      timeoutMs: 30_000,
      what: 'records flowing into the stream',
    });
    // Mid-stream: the node the most traffic is on may be the stream leader; either way, kill one.
    await cluster.killNode(1);
    await floodUdp(ns.name, { count: 500, base: 11 });
    destroyed.push(...(await kernelTable(ns.name)));
    await conntrackTool(ns.name, ['-F']);
    expect(destroyed.length).toBeGreaterThanOrEqual(1000);
    await waitFor(async () => (await streamCount(nc, STREAM)) >= probes + destroyed.length, {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: () => `all ${destroyed.length} flows in the stream\n${cli.err}`,
    });
    expect(await cli.stop('SIGTERM')).toBe(0);
    expect(cli.err).toMatch(/msg="export finished"/);

    const stored = await readStream(nc, STREAM);
    const key = (proto: number, s: string, sp: number, d: string, dp: number) => `${proto} ${s}:${sp}>${d}:${dp}`;
    const counts = new Map<string, number>();
    for (const m of stored) {
      const f = m.data as { reason: string; protonum: number; src: string; sport: number; dst: string; dport: number };
      expect(m.subject).toBe(`flowgrab.router-a.conntrack.${ns.name.replace(/[^A-Za-z0-9_-]/g, '_')}`);
      expect(m.msgId).toMatch(/^router-a\/conntrack\/\d+\/end\//);
      if (f.reason !== 'end') continue;
      const k = key(f.protonum, f.src, f.sport, f.dst, f.dport);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const e of destroyed) {
      const k = key(e.protonum, e.orig.src, e.orig.sport ?? 0, e.orig.dst, e.orig.dport ?? 0);
      expect(counts.get(k), `${e.line} stored once`).toBe(1);
    }
    // No flow twice (listed or not), and no message id twice.
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(stored.length);
  } finally {
    await cli.stop('SIGKILL');
  }
}, 180_000);
