/**
 * NATS JetStream export (issue 19), each figure next to a baseline of the same run:
 *  1. records/s from conntrack DESTROY events (a UDP flood in a namespace, then a flush) through
 *     `flowgrab export --nats` (a process of its own) into a 3-replica stream on a 3-node loopback
 *     cluster, and the exporter's CPU per record;
 *  2. a bare @nats-io publish loop of the very same messages (subjects, payloads, Nats-Msg-Id; the same
 *     window of 256 acks in flight) into a second 3-replica stream: records/s and this process's CPU per record;
 *  3. the spool alone: append rate (write(2) per event-loop turn, as the sinks use it) and replay rate
 *     (read back and confirm).
 * FG_BENCH_NATS_FLOWS sizes part 1 (default 20 000); the whole run stays well under two minutes.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { Spool } from '../src/export/spool/index.js';
import { waitFor } from '../src/testing/lab/index.js';
import { CliProcess, NatsCluster, readStream, streamCount } from '../test/helpers/nats.js';
import { BenchNetns, fmt } from './lib.js';

// Run from dist/bench: the CLI built next to it.
const FLOWGRAB = join(import.meta.dirname, '../bin/flowgrab.js');
const FLOWS = Number(process.env.FG_BENCH_NATS_FLOWS ?? 20_000);

/** CPU time of a process in ns, from the scheduler's per-thread accounting. */
function cpuNs(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread gone
    }
  }
  return ns;
}

async function exportPart(cluster: NatsCluster, ns: BenchNetns, spool: string) {
  const nc = await cluster.client();
  const cli = new CliProcess([
    FLOWGRAB,
    'export',
    '--nats',
    cluster.urls.join(','),
    '--stream',
    'BENCH',
    '--replicas',
    '3',
    '--spool',
    spool,
    '--netns',
    ns.name,
    '--active-timeout',
    '0',
  ]);
  try {
    await waitFor(() => cli.err.includes('export started'), { timeoutMs: 20_000, what: `exporter\n${cli.err}` });
    await waitFor(async () => (await jetstreamManager(nc)).streams.info('BENCH').then(() => true), {
      timeoutMs: 20_000,
      what: 'the stream',
    });
    await ns.generate(FLOWS, 0, 1);
    const pid = cli.proc.pid as number;
    const c0 = cpuNs(pid);
    const t0 = process.hrtime.bigint();
    ns.exec(['conntrack', '-F']);
    await waitFor(async () => (await streamCount(nc, 'BENCH')) >= FLOWS, {
      timeoutMs: 90_000,
      intervalMs: 25,
      what: `${FLOWS} records in the stream\n${cli.err}`,
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = (cpuNs(pid) - c0) / 1000 / FLOWS;
    await cli.stop('SIGTERM');
    return { nc, rate: FLOWS / secs, cpuUs: cpu, stored: await readStream(nc, 'BENCH', 60_000) };
  } finally {
    await cli.stop('SIGKILL');
  }
}

async function barePart(nc: Awaited<ReturnType<NatsCluster['client']>>, msgs: Awaited<ReturnType<typeof readStream>>) {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'BARE', subjects: ['bare.>'], num_replicas: 3 });
  const js = jetstream(nc);
  const data = msgs.map((m) => ({
    subject: `bare.${m.subject}`,
    body: JSON.stringify(m.data),
    id: m.msgId ?? String(m.seq),
  }));
  const u0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < data.length) {
      const d = data[next++];
      const h = headers();
      await js.publish(d.subject, d.body, { msgID: d.id, headers: h });
    }
  };
  await Promise.all(Array.from({ length: 256 }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const u = process.cpuUsage(u0);
  return { rate: data.length / secs, cpuUs: (u.user + u.system) / data.length };
}

function spoolPart(sample: string): { write: number; replay: number } {
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-spool-'));
  const n = 200_000;
  const payload = Buffer.from(sample);
  try {
    const s = new Spool({ dir, maxBytes: 1 << 30 });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      s.append(payload);
      if (i % 1000 === 999) s.flush(); // the sinks write once per event-loop turn
    }
    s.flush();
    const write = n / (Number(process.hrtime.bigint() - t0) / 1e9);
    const t1 = process.hrtime.bigint();
    let got = 0;
    for (let guard = 0; guard < n; guard++) {
      const b = s.next(1024);
      if (b.length === 0) break;
      for (const e of b) s.ack(e.seq);
      got += b.length;
    }
    const replay = got / (Number(process.hrtime.bigint() - t1) / 1e9);
    s.close();
    return { write, replay };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchNats(): Promise<void> {
  console.log(
    `\n== NATS JetStream export: ${FLOWS} conntrack flows into a 3-replica stream (3-node loopback cluster) ==`,
  );
  const cluster = await NatsCluster.start(3);
  const ns = new BenchNetns();
  const spool = mkdtempSync(join(tmpdir(), 'fg-bench-nats-'));
  try {
    const e = await exportPart(cluster, ns, spool);
    console.log(
      `flowgrab export --nats: ${fmt(e.rate, 0)} records/s (DESTROY events → stored, acked), exporter CPU ${fmt(e.cpuUs)} µs/record`,
    );
    const b = await barePart(e.nc, e.stored);
    console.log(
      `bare @nats-io js.publish loop, same ${e.stored.length} messages, 256 in flight: ${fmt(b.rate, 0)} records/s, CPU ${fmt(b.cpuUs)} µs/record`,
    );
    console.log(`ratio flowgrab/bare: ${fmt(e.rate / b.rate, 2)}× the rate`);
    await e.nc.close();
    const sp = spoolPart(JSON.stringify(e.stored[0]?.data ?? { type: 'flow' }));
    console.log(
      `spool (${JSON.stringify(e.stored[0]?.data ?? {}).length}-byte records): write ${fmt(sp.write, 0)} records/s, replay ${fmt(sp.replay, 0)} records/s`,
    );
  } finally {
    cluster.close();
    ns.close();
    rmSync(spool, { recursive: true, force: true });
  }
}
