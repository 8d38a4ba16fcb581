/**
 * Analyzers sharing a durable: two `flowgrab watch 'nats(… durable=d)'`
 * processes on one stream. Their outputs together are the stream's records,
 * none twice; one is frozen holding records it was sent and then killed -9,
 * and the other gets those records after the ack wait.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from '../../src/testing/lab/index.js';
import { FLOWGRAB } from '../helpers/daemon.js';
import { CliProcess, NatsCluster } from '../helpers/nats.js';

let cluster: NatsCluster;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const STREAM = 'FGC';
const procs: CliProcess[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(1);
  nc = await cluster.client();
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['flowgrab.>'] });
}, 60_000);
afterAll(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  await nc?.close().catch(() => undefined);
  cluster?.close();
});

/** A flow record as an exporter stores it; `sport` numbers them. */
const flow = (i: number) => ({
  type: 'flow',
  family: 'ipv4',
  protonum: 17,
  proto: 'udp',
  src: '10.9.0.1',
  dst: '10.9.0.2',
  sport: i,
  dport: 53,
  packets: 1,
  bytes: 60,
  rsrc: '10.9.0.2',
  rdst: '10.9.0.1',
  rsport: 53,
  rdport: i,
  rpackets: 1,
  rbytes: 90,
  start: 1_700_000_000_000 + i,
  end: 1_700_000_000_100 + i,
  tcpFlags: 0,
  reason: 'end',
  id: i,
});

async function publish(from: number, to: number): Promise<void> {
  const acks = [];
  for (let i = from; i < to; i++)
    acks.push(js.publish(`flowgrab.h${i % 3}.conntrack`, JSON.stringify(flow(i)), { msgID: `h/conntrack/${i}/end` }));
  await Promise.all(acks);
}

function analyzer(): CliProcess {
  const graph = `nats(url="${cluster.urls.join(',')}", stream=${STREAM}, subject="flowgrab.>", durable=d, ackWait=2s) -> match(proto == udp && reason == end)`;
  const p = new CliProcess([FLOWGRAB, 'watch', graph, '--json']);
  procs.push(p);
  return p;
}

const ports = (p: CliProcess) =>
  p.out
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { sport: number }).sport);

it('two analyzers share a durable: together every record once; a killed one’s unacknowledged records go to the other', async () => {
  const a = analyzer();
  const b = analyzer();
  // Both are pulling before anything is published, so both get a share.
  await waitFor(async () => (await jsm.consumers.info(STREAM, 'd')).num_waiting >= 2, {
    timeoutMs: 20_000,
    what: () => `two pulling analyzers\n${a.err}\n${b.err}`,
  });
  await publish(0, 2000);
  await waitFor(() => ports(a).length + ports(b).length >= 2000, {
    timeoutMs: 30_000,
    what: () => `2000 records out of the analyzers\n${a.err}\n${b.err}`,
  });
  await waitFor(async () => (await jsm.consumers.info(STREAM, 'd')).num_ack_pending === 0, {
    timeoutMs: 10_000,
    what: 'every record acknowledged',
  });
  expect(ports(a).length).toBeGreaterThan(0);
  expect(ports(b).length).toBeGreaterThan(0);

  // A freezes while records are sent to it, and dies without acknowledging them.
  const before = ports(a).length;
  a.proc.kill('SIGSTOP');
  await publish(2000, 4000);
  await waitFor(
    async () => {
      const ci = await jsm.consumers.info(STREAM, 'd');
      return ci.num_pending === 0 && ci.num_ack_pending > 0 && ports(b).length + before + ci.num_ack_pending >= 4000;
    },
    { timeoutMs: 30_000, what: 'the frozen analyzer holding unacknowledged records' },
  );
  const held = (await jsm.consumers.info(STREAM, 'd')).num_ack_pending;
  expect(held).toBeGreaterThan(0);
  await a.stop('SIGKILL');
  await waitFor(() => ports(a).length + ports(b).length >= 4000, {
    timeoutMs: 30_000,
    what: () => `B taking over A's ${held} records\n${b.err}`,
  });
  expect(ports(a).length).toBe(before);
  const all = [...ports(a), ...ports(b)].sort((x, y) => x - y);
  expect(all).toEqual([...Array(4000).keys()]);
  expect(await b.stop('SIGTERM')).toBe(0);
});

it('hostile messages on the stream: a record nested 300 000 deep or not a record is refused as a decode loss; a list of 200 000 goes through a match; the analyzer lives and every good record comes out', async () => {
  const graph = `nats(url="${cluster.urls.join(',')}", stream=${STREAM}, subject="flowgrab.evil.>", durable=h, ackWait=2s) -> match(answers.data == "1.2.3.4" || proto == udp)`;
  const p = new CliProcess([FLOWGRAB, 'watch', graph, '--json']);
  procs.push(p);
  await waitFor(async () => ((await jsm.consumers.info(STREAM, 'h').catch(() => undefined))?.num_waiting ?? 0) > 0, {
    timeoutMs: 20_000,
    what: () => `the analyzer pulling\n${p.err}`,
  });
  const deep = `{"a":${'['.repeat(300_000)}${']'.repeat(300_000)}}`;
  const wide = JSON.stringify({ answers: Array.from({ length: 200_000 }, () => ({})) });
  for (const payload of [JSON.stringify(flow(1)), deep, wide, '[1,2,3]', JSON.stringify(flow(2))])
    await js.publish('flowgrab.evil.x', payload);
  await waitFor(() => ports(p).length >= 2, { timeoutMs: 30_000, what: () => `the two good records\n${p.err}` });
  await waitFor(async () => (await jsm.consumers.info(STREAM, 'h')).num_ack_pending === 0, {
    timeoutMs: 10_000,
    what: 'every message acknowledged or refused',
  });
  expect(ports(p)).toEqual([1, 2]);
  expect(p.err).toMatch(/nested deeper than 32 levels/);
  expect(p.err).toMatch(/not a record \(a JSON object\)/);
  expect(await p.stop('SIGTERM')).toBe(0);
});
