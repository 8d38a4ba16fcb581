/**
 * SPIN MQTT bridge benchmark. 20 000 retained `nodeInfo`s in one burst (a
 * connect's startup messages) then 100 000 `traffic`-sized messages in
 * chunks of 1 000 per event-loop turn, from a fake core through the bridge's
 * embedded broker to an mqtt.js subscriber over TCP, vs the same messages
 * handed to a bare aedes one awaited publish at a time (the plain way to
 * keep their order), and the bridge to Debian's mosquitto. Then memory:
 * 200 000 × 1 KiB offered while the only subscriber has stopped reading.
 * Best of 3 runs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { Subject } from 'rxjs';
import type { SpinCore, SpinMessage } from '../examples/spin/io/contract.js';
import { startMqtt } from '../examples/spin/io/mqtt.js';
import { fmt } from './lib.js';

const TRAFFIC = Number(process.env.FG_BENCH_MQTT_MESSAGES ?? 100_000);
const NODES = 20_000;
const CHUNK = 1000;
/** Messages the producer may be ahead of the subscriber (the 20 000-node burst goes at once). */
const WINDOW = 20_000;

function messages(): SpinMessage[] {
  const out: SpinMessage[] = [];
  for (let i = 1; i <= NODES; i++) {
    const node = { id: i, lastseen: 1_700_000_000, ips: [`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`], domains: [] };
    out.push({
      topic: `SPIN/traffic/node/${i}`,
      payload: JSON.stringify({ command: 'nodeInfo', result: node }),
      retain: true,
    });
  }
  for (let i = 0; i < TRAFFIC; i++) {
    const flows = [
      {
        from: 1 + (i % NODES),
        to: 1 + ((i * 7) % NODES),
        protocol: 6,
        from_port: 40_000 + (i % 20_000),
        to_port: 443,
        size: 1200 + (i % 100),
        count: 3,
      },
    ];
    const result = { flows, timestamp: 1_700_000_000 + i, total_size: flows[0].size, total_count: 3 };
    out.push({
      topic: 'SPIN/traffic',
      payload: JSON.stringify({ command: 'traffic', argument: '', result }),
      retain: false,
    });
  }
  return out;
}

function fakeCore(): SpinCore & { subject: Subject<SpinMessage> } {
  const subject = new Subject<SpinMessage>();
  return { subject, messages$: subject, startupMessages: () => [], handleRpc: async () => undefined };
}

/** Subscribes to SPIN/#, resolves when `expected` messages arrived (or after `ms`) with the count. */
async function subscriber(
  url: string,
): Promise<{ until(expected: number, ms: number): Promise<number>; close(): Promise<void> }> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  let got = 0;
  let wake: (() => void) | undefined;
  c.on('message', () => {
    got++;
    wake?.();
  });
  await c.subscribeAsync('SPIN/#');
  return {
    until: (expected, ms) =>
      new Promise((resolve) => {
        const end = setTimeout(() => resolve(got), ms);
        wake = () => {
          if (got >= expected) {
            clearTimeout(end);
            resolve(got);
          }
        };
        wake();
      }),
    close: () => c.endAsync(true),
  };
}

/**
 * Offers the messages through the bridge. `window` bounds how far the
 * producer runs ahead of the subscriber (as the baseline's awaited
 * publishes do); Infinity offers everything at once (overload).
 */
async function viaBridge(
  broker: string,
  all: SpinMessage[],
  window: number,
): Promise<{ ms: number; got: number; dropped: number }> {
  const core = fakeCore();
  const bridge = await startMqtt(core, { broker, tcpPort: 0, wsPort: 0 });
  const sub = await subscriber(bridge.url);
  const t0 = performance.now();
  for (let i = 0; i < all.length; ) {
    const n = i < NODES ? NODES : CHUNK;
    for (const m of all.slice(i, i + n)) core.subject.next(m);
    i += n;
    if (Number.isFinite(window)) await sub.until(i - bridge.dropped - window, 60_000);
    else await new Promise((r) => setImmediate(r));
  }
  const got = await sub.until(all.length - bridge.dropped, 60_000);
  const ms = performance.now() - t0;
  await sub.close();
  await bridge.close();
  return { ms, got, dropped: bridge.dropped };
}

async function viaBareAedes(all: SpinMessage[]): Promise<{ ms: number; got: number }> {
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sub = await subscriber(`mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const t0 = performance.now();
  for (const m of all) {
    await new Promise<void>((r) =>
      broker.publish(
        { cmd: 'publish', topic: m.topic, payload: Buffer.from(m.payload), qos: 0, retain: m.retain, dup: false },
        () => r(),
      ),
    );
  }
  const got = await sub.until(all.length, 60_000);
  const ms = performance.now() - t0;
  await sub.close();
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => broker.close(() => r()));
  return { ms, got };
}

async function withMosquitto<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-mosquitto-'));
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n`);
  const child = spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => {
        const s = createConnection({ host: '127.0.0.1', port }, () => {
          s.destroy();
          r(true);
        });
        s.on('error', () => r(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return await fn(`mqtt://127.0.0.1:${port}`);
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function frozenSubscriber(): Promise<{ offered: number; dropped: number; rssMiB: number }> {
  const core = fakeCore();
  const bridge = await startMqtt(core, { broker: 'embedded', tcpPort: 0, wsPort: 0 });
  const c = await mqtt.connectAsync(bridge.url, { reconnectPeriod: 0 });
  await c.subscribeAsync('SPIN/#');
  c.stream.pause();
  const payload = 'x'.repeat(1024);
  const offered = 200_000;
  global.gc?.();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < offered; i++) core.subject.next({ topic: 'SPIN/traffic', payload, retain: false });
  await new Promise((r) => setTimeout(r, 500));
  const rssMiB = (process.memoryUsage().rss - before) / 2 ** 20;
  const dropped = bridge.dropped;
  c.stream.destroy();
  await bridge.close();
  return { offered, dropped, rssMiB };
}

const best = <T extends { ms: number }>(runs: T[]): T => runs.reduce((a, b) => (b.ms < a.ms ? b : a));

export async function benchSpinMqtt(): Promise<void> {
  const frozen = await frozenSubscriber();
  const all = messages();
  const runs = {
    bridge: [] as { ms: number; got: number; dropped: number }[],
    bare: [] as { ms: number; got: number }[],
    mosq: [] as { ms: number; got: number; dropped: number }[],
  };
  // Warm-up, so the first measured configuration does not pay for the JIT.
  await viaBareAedes(all.slice(0, NODES + 10_000));
  await viaBridge('embedded', all.slice(0, NODES + 10_000), WINDOW);
  for (let i = 0; i < 3; i++) {
    runs.bare.push(await viaBareAedes(all));
    runs.bridge.push(await viaBridge('embedded', all, WINDOW));
    runs.mosq.push(await withMosquitto((url) => viaBridge(url, all, WINDOW)));
  }
  const [bare, bridge, mosq] = [best(runs.bare), best(runs.bridge), best(runs.mosq)];
  const rate = (r: { ms: number; got: number }) => r.got / (r.ms / 1000);
  console.log(
    `spin-mqtt: ${all.length} messages (${NODES} retained nodeInfo + ${TRAFFIC} traffic) to one TCP subscriber, best of 3`,
  );
  console.log(`  bare aedes, awaited publishes  ${fmt(rate(bare) / 1000)} k msg/s (${bare.got} delivered)`);
  console.log(
    `  bridge, embedded broker        ${fmt(rate(bridge) / 1000)} k msg/s (${bridge.got} delivered, ${bridge.dropped} dropped)  ratio ${fmt(rate(bridge) / rate(bare), 2)}× baseline`,
  );
  console.log(
    `  bridge → mosquitto             ${fmt(rate(mosq) / 1000)} k msg/s (${mosq.got} delivered, ${mosq.dropped} dropped)  ratio ${fmt(rate(mosq) / rate(bare), 2)}× baseline`,
  );
  const burst = await viaBridge('embedded', all, Number.POSITIVE_INFINITY);
  console.log(
    `  overload, all offered within ${fmt(all.length / CHUNK)} event-loop turns: ${burst.got} delivered, ${burst.dropped} dropped (queue bound 100 000 / 32 MiB)`,
  );
  console.log(
    `  stuck subscriber: ${frozen.offered} × 1 KiB offered, ${frozen.dropped} dropped, RSS +${fmt(frozen.rssMiB)} MiB (${fmt(frozen.offered / 1024)} MiB offered)`,
  );
}
