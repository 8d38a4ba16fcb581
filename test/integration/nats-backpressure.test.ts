/**
 * A stream that cannot take more (server-side limits, discard=new) is
 * backpressure, not loss: the sink counts the refusals, raises a notice,
 * keeps the records in its spool and delivers them once the stream has room.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { natsSink } from '../../src/export/nats/index.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { NatsCluster, readStream, streamCount } from '../helpers/nats.js';

let cluster: NatsCluster;
let nc: NatsConnection;
let spool: string;
const STREAM = 'FGD';

beforeAll(async () => {
  cluster = await NatsCluster.start(1);
  nc = await cluster.client();
  spool = mkdtempSync(join(tmpdir(), 'fg-nats-bp-'));
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['flowgrab.>'], max_msgs: 100, discard: DiscardPolicy.New });
}, 60_000);
afterAll(async () => {
  await nc?.close().catch(() => undefined);
  cluster?.close();
  rmSync(spool, { recursive: true, force: true });
});

it('a full stream shows up as counted backpressure with the records kept, delivered when there is room', async () => {
  const notices: SourceNotice[] = [];
  const sink = await natsSink({
    servers: cluster.urls,
    name: STREAM,
    spoolDir: spool,
    host: 'bp',
    notices: { next: (n) => notices.push(n) },
  });
  try {
    for (let i = 0; i < 300; i++) sink.write({ type: 'count', key: i, count: i, ts: 1_700_000_000_000 + i });
    await waitFor(() => sink.stats().backpressure > 0 && (notices.length > 0 || false), {
      timeoutMs: 20_000,
      what: `refusals counted\n${JSON.stringify(sink.stats())}`,
    });
    expect(await streamCount(nc, STREAM)).toBe(100);
    const st = sink.stats();
    expect(st).toMatchObject({ received: 300, sent: 100, dropped: 0, spooled: 200 });
    expect(st.lastError).toMatch(/maximum messages exceeded/);
    expect(notices[0]).toMatchObject({ kind: 'warning', source: 'nats' });
    expect(notices[0].message).toMatch(/backpressure/);

    // Room again: the held records go out, in order, none twice.
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAM);
    await jsm.streams.update(STREAM, { ...info.config, max_msgs: -1 });
    await waitFor(() => sink.stats().spooled === 0, { timeoutMs: 30_000, what: 'the spool to empty' });
    const stored = await readStream(nc, STREAM);
    expect(stored.map((m) => m.data.key)).toEqual([...Array(300).keys()]);
    expect(sink.stats()).toMatchObject({ sent: 300, dropped: 0 });
  } finally {
    await sink.close();
  }
});

it('past the spool limit the oldest records are dropped, counted and reported, and every record is accounted for', async () => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'FGD2', subjects: ['fgd2.>'], max_msgs: 10, discard: DiscardPolicy.New });
  const dir = mkdtempSync(join(tmpdir(), 'fg-nats-bp2-'));
  const notices: SourceNotice[] = [];
  const sink = await natsSink({
    servers: cluster.urls,
    name: 'FGD2',
    subject: 'fgd2.{host}',
    spoolDir: dir,
    spoolBytes: 65_536,
    drainTimeoutMs: 500,
    host: 'bp2',
    notices: { next: (n) => notices.push(n) },
  });
  try {
    await waitFor(() => sink.stats().connected, { timeoutMs: 20_000, what: 'the sink to connect' });
    for (let i = 0; i < 5000; i++) sink.write({ type: 'count', key: i, pad: 'x'.repeat(100) });
    await waitFor(() => sink.stats().sent === 10, { timeoutMs: 20_000, what: 'the stream to fill' });
    const st = sink.stats();
    expect(st.dropped).toBeGreaterThan(0);
    const lost = notices.filter((n) => n.kind === 'loss').reduce((s, n) => s + (n.count ?? 0), 0);
    expect(lost).toBe(st.dropped);
    expect(st.sent + st.spooled + st.dropped).toBe(5000);
  } finally {
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
