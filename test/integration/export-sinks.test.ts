/**
 * IPFIX over TCP against a collector of the test's own (a TCP server that
 * reads IPFIX messages): templates first in every connection, sequence from
 * 0 per session, records queued while it is down and delivered when it
 * returns; MQTT against a real mosquitto on a free loopback port: topic
 * template, QoS 1, a broker restart costs only what the bounded queue
 * cannot hold, and that loss is counted.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ipfixSink } from '../../src/export/collector.js';
import type { ExportFlow } from '../../src/export/flow.js';
import { mqttSink } from '../../src/export/mqtt.js';
import type { FlowSink } from '../../src/export/sink.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { freePort, Mosquitto, MosquittoSub } from '../helpers/mosquitto.js';
import { readMessage } from '../unit/export/wire.js';

const flow = (i: number): ExportFlow => ({
  type: 'flow',
  family: i % 2 ? 'ipv6' : 'ipv4',
  protonum: 17,
  proto: 'udp',
  src: i % 2 ? 'fd77::11' : '192.168.77.11',
  dst: i % 2 ? '2001:db8:77::10' : '198.51.100.10',
  sport: 20_000 + i,
  dport: 7007,
  packets: 1,
  bytes: 100,
  rsrc: i % 2 ? '2001:db8:77::10' : '198.51.100.10',
  rdst: i % 2 ? 'fd77::11' : '198.51.100.1',
  rsport: 7007,
  rdport: 20_000 + i,
  rpackets: 1,
  rbytes: 90,
  start: Date.now() - 1000,
  end: Date.now(),
  tcpFlags: 0,
  reason: 'end',
});

/** A TCP IPFIX collector: splits the stream into messages by their length field, per connection. */
class TcpCollector {
  sessions: Buffer[][] = [];
  private server?: Server;
  private conns = new Set<Socket>();
  constructor(public port = 0) {}
  async start(): Promise<void> {
    const server = createServer((c) => {
      this.conns.add(c);
      const msgs: Buffer[] = [];
      this.sessions.push(msgs);
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= buf.readUInt16BE(2)) {
          const len = buf.readUInt16BE(2);
          msgs.push(buf.subarray(0, len));
          buf = buf.subarray(len);
        }
      });
      c.on('close', () => this.conns.delete(c));
      c.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }
  async stop(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
  records(session: Buffer[]): number {
    return session.reduce(
      (n, m) =>
        n +
        readMessage(m)
          .sets.filter((s) => s.id === 256 || s.id === 257)
          .reduce((k, s) => k + s.body.length / (s.id === 256 ? 77 : 125), 0),
      0,
    );
  }
}

/** Writes flows, 5 000 at a time, until the sink drops some (or `most` are written); returns how many it wrote. */
async function writeUntilDropped(sink: FlowSink, most: number, what: string): Promise<number> {
  let n = 0;
  await waitFor(
    () => {
      for (let i = 0; i < 5000; i++) sink.write(flow(n++));
      return sink.stats().dropped > 0 || n >= most;
    },
    { what, timeoutMs: 60_000 },
  );
  return n;
}

describe('IPFIX over TCP', () => {
  it('a collector that accepts and never reads does not hold flush() or close() for good: what it did not take is dropped', async () => {
    const conns: Socket[] = [];
    // A collector that never reads: the kernel's buffers fill, then the exporter's.
    const server = createServer((c) => {
      c.pause();
      conns.push(c);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const sink = ipfixSink({ collector: `127.0.0.1:${port}`, transport: 'tcp', maxReconnectMs: 200 });
    try {
      await waitFor(() => conns.length === 1, { what: 'the exporter to connect' });
      // Flows until the socket holds some back (several MB fill loopback's buffers first).
      const n = await writeUntilDropped(sink, 400_000, 'the socket to hold records back');
      const t0 = Date.now();
      await sink.flush(); // waits IDLE_WAIT_MS at most
      await sink.close(); // then ends, and destroys what will not end
      expect(Date.now() - t0).toBeLessThan(30_000);
      const st = sink.stats();
      expect(st.dropped).toBeGreaterThan(0);
      expect(st.sent + st.dropped).toBe(n);
    } finally {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 90_000);

  it('templates first in each connection, sequence per session, queued while down, delivered on reconnect', async () => {
    const col = new TcpCollector();
    await col.start();
    const sink = ipfixSink({ collector: `127.0.0.1:${col.port}`, transport: 'tcp', maxReconnectMs: 200 });
    try {
      await waitFor(() => col.sessions.length === 1, { what: 'the exporter to connect' });
      for (let i = 0; i < 30; i++) sink.write(flow(i));
      await sink.flush();
      await waitFor(() => col.records(col.sessions[0]) === 30, { what: '30 records' });
      const first = col.sessions[0].map(readMessage);
      expect(first[0].sets.map((s) => s.id)).toEqual([2]);
      expect(first.slice(1).every((m) => m.sets.every((s) => s.id !== 2))).toBe(true);
      // Collector goes away: records wait in the queue.
      const port = col.port;
      await col.stop();
      await waitFor(
        () => {
          sink.write(flow(99));
          return sink.stats().queued > 0;
        },
        {
          what: 'records to queue',
        },
      );
      for (let i = 100; i < 110; i++) sink.write(flow(i));
      const queued = sink.stats().queued;
      expect(queued).toBeGreaterThanOrEqual(10);
      const back = new TcpCollector(port);
      await back.start();
      await waitFor(() => back.sessions.length === 1 && back.records(back.sessions[0]) >= queued, {
        what: 'queued records to arrive',
        timeoutMs: 5000,
      });
      const msgs = back.sessions[0].map(readMessage);
      expect(msgs[0].sets.map((s) => s.id)).toEqual([2]);
      expect(msgs[0].header.readUInt32BE(8)).toBe(0);
      // Sequence numbers count the records before each message in this session.
      let seq = 0;
      for (const m of msgs) {
        expect(m.header.readUInt32BE(8)).toBe(seq);
        seq += m.sets.filter((s) => s.id >= 256).reduce((k, s) => k + s.body.length / (s.id === 256 ? 77 : 125), 0);
      }
      await sink.close();
      await back.stop();
      expect(sink.stats()).toMatchObject({ queued: 0, rejected: 0 });
      // Every record is accounted for; all queued ones reached the new session.
      const st = sink.stats();
      expect(st.sent + st.dropped).toBe(st.received);
      expect(back.records(back.sessions[0])).toBeGreaterThanOrEqual(queued);
    } finally {
      await sink.close();
      await col.stop();
    }
  });
});

describe('MQTT sink', () => {
  it('a broker that accepts and stops reading: publishes in flight are bounded, the rest queued or dropped and counted', async () => {
    const conns: Socket[] = [];
    // Answers CONNECT with CONNACK, then never reads again.
    const server = createServer((c) => {
      conns.push(c);
      c.once('data', () => {
        c.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
        c.pause();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const sink = await mqttSink({ url: `mqtt://127.0.0.1:${port}`, queueRecords: 1000, reconnectMs: 60_000 });
    try {
      await waitFor(() => conns.length === 1, { what: 'the sink to connect' });
      // Writes until the queue behind the bounded in-flight publishes overflows (the socket's buffers fill first).
      const n = await writeUntilDropped(sink, 600_000, 'the queue to overflow');
      const mid = sink.stats();
      expect(mid.dropped).toBeGreaterThan(0);
      expect(mid.queued).toBeLessThanOrEqual(1000);
      await sink.close();
      const st = sink.stats();
      // Every record is accounted for: written to the socket, or dropped (none left queued or in flight).
      expect(st.sent + st.dropped).toBe(n);
      expect(st.queued).toBe(0);
    } finally {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 90_000);

  it('publishes to the topic template with QoS 1; a broker restart loses only what the bounded queue cannot hold, counted', async () => {
    const port = await freePort();
    const broker = new Mosquitto(port);
    let sub: MosquittoSub | undefined;
    try {
      await broker.start(); // accepts connections
      sub = await new MosquittoSub(port, 'fg/#').ready(); // its SUBACK arrived
      const got = sub.messages;
      const sink = await mqttSink({
        url: `mqtt://127.0.0.1:${port}`,
        topic: 'fg/{family}/{src}',
        qos: 1,
        queueRecords: 5,
        reconnectMs: 100,
      });
      await waitFor(
        () => {
          sink.write(flow(0));
          return sink.stats().sent > 0;
        },
        { what: 'the first publish', intervalMs: 100 },
      );
      sink.write(flow(1));
      await sink.flush();
      await waitFor(() => got.some((m) => m.topic === 'fg/ipv6/fd77::11'), {
        what: 'the subscriber to get it',
      });
      const msg = got.find((m) => m.topic === 'fg/ipv6/fd77::11');
      expect(JSON.parse(msg?.payload ?? '')).toMatchObject({ sport: 20_001, family: 'ipv6' });
      // Broker restart: 12 records while it is away; the queue holds 5.
      await broker.stop();
      await waitFor(
        () => {
          sink.write(flow(50));
          return sink.stats().queued > 0;
        },
        {
          what: 'the sink to notice',
          intervalMs: 50,
        },
      );
      const before = sink.stats();
      for (let i = 0; i < 12; i++) sink.write(flow(200 + i));
      const away = sink.stats();
      expect(away.queued).toBe(5);
      expect(away.dropped - before.dropped).toBeGreaterThanOrEqual(8);
      await broker.start();
      await waitFor(() => sink.stats().queued === 0 && sink.stats().sent >= before.sent + 5, {
        what: 'the queue to drain',
        timeoutMs: 10_000,
      });
      await sink.close();
      const st = sink.stats();
      expect(st.received).toBe(st.sent + st.dropped + st.rejected);
      // The last 5 records written while the broker was away are the ones that survived.
      expect(st.sent).toBeGreaterThanOrEqual(before.sent + 5);
    } finally {
      await sub?.stop();
      await broker.dispose();
    }
  });
});
