// The SPIN MQTT bridge against Debian's mosquitto, checked with Debian's
// mosquitto_sub / mosquitto_pub: SPIN/traffic messages and retained
// nodeInfo in SPIN's format, JSON-RPC over MQTT, and a broker that goes away
// and comes back.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSpin } from '../../examples/spin/app.js';
import { PARSE_ERROR_REPLY, startMqtt } from '../../examples/spin/io/mqtt.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork, waitFor } from '../../src/testing/lab/index.js';
import { freePort, Mosquitto, MosquittoSub, mosquittoPub } from '../helpers/mosquitto.js';
import { FakeSpinCore } from '../helpers/spin-fake-core.js';
import { inSpinKeyOrder, nodeInfoSchema, trafficSchema } from '../helpers/spin-schemas.js';

const SPIN_CLI = join(import.meta.dirname, '../../dist/examples/spin/main.js');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broker(): Promise<Mosquitto> {
  const m = new Mosquitto(await freePort());
  cleanups.push(() => m.dispose());
  await m.start();
  return m;
}

async function subscriber(port: number, topic = 'SPIN/#'): Promise<MosquittoSub> {
  const sub = new MosquittoSub(port, topic);
  cleanups.push(() => sub.stop());
  return sub.ready();
}

describe('bridge with a fake core on mosquitto', () => {
  it('publishes SPIN/traffic and retained nodeInfo that mosquitto_sub receives in SPIN format', async () => {
    const mosquitto = await broker();
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: mosquitto.url });
    cleanups.push(() => bridge.close());
    expect(bridge.connected).toBe(true);

    // A subscriber arriving after the startup messages still gets every node, retained.
    const sub = await subscriber(mosquitto.port);
    await waitFor(() => sub.messages.filter((m) => m.topic.startsWith('SPIN/traffic/node/')).length === 4);
    for (const m of sub.messages) {
      expect(m.retain).toBe(true);
      const info = nodeInfoSchema.parse(JSON.parse(m.payload));
      expect(m.topic).toBe(`SPIN/traffic/node/${info.result.id}`);
    }

    core.emitTraffic(1500, 4);
    await waitFor(() => sub.messages.some((m) => m.topic === 'SPIN/traffic'));
    const traffic = sub.messages.find((m) => m.topic === 'SPIN/traffic');
    expect(traffic?.retain).toBe(false);
    const parsed = trafficSchema.parse(JSON.parse(traffic?.payload ?? ''));
    expect(parsed.result).toMatchObject({
      total_size: 1500,
      total_count: 4,
      flows: [{ from: 1, to: 4, to_port: 7007 }],
    });
    // Compact JSON as cJSON_PrintUnformatted writes it.
    expect(traffic?.payload).toBe(JSON.stringify(JSON.parse(traffic?.payload ?? '')));
  });

  it('answers an RPC sent with mosquitto_pub on SPIN/jsonrpc/a (rpc asked for)', async () => {
    const mosquitto = await broker();
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: mosquitto.url, rpc: true });
    cleanups.push(() => bridge.close());
    const answers = await subscriber(mosquitto.port, 'SPIN/jsonrpc/a');

    await mosquittoPub(mosquitto.port, 'SPIN/jsonrpc/q', '{"jsonrpc":"2.0","id":42,"method":"list_devices"}');
    await waitFor(() => answers.messages.length === 1);
    const reply = JSON.parse(answers.messages[0].payload);
    expect(reply).toMatchObject({ jsonrpc: '2.0', id: 42 });
    expect(reply.result.map((d: { mac: string }) => d.mac)).toEqual([
      '02:00:00:00:77:11',
      '02:00:00:00:77:12',
      '02:00:00:00:77:13',
    ]);

    await mosquittoPub(mosquitto.port, 'SPIN/jsonrpc/q', 'not json');
    await waitFor(() => answers.messages.length === 2);
    expect(JSON.parse(answers.messages[1].payload)).toEqual(PARSE_ERROR_REPLY);
  });

  it('counts drops while mosquitto is down, reconnects when it returns and publishes the startup state again', async () => {
    const mosquitto = await broker();
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: mosquitto.url }, { minBackoffMs: 100, maxBackoffMs: 400 });
    cleanups.push(() => bridge.close());

    await mosquitto.stop();
    await waitFor(() => !bridge.connected);
    for (let i = 0; i < 3; i++) core.emitTraffic();
    expect(bridge.dropped).toBe(3);

    await mosquitto.start();
    await waitFor(() => bridge.connected, { timeoutMs: 5000 });
    expect(bridge.reconnects).toBe(1);
    // The restarted broker has no persistence: the retained nodes are there again because the bridge republished them.
    const sub = await subscriber(mosquitto.port);
    await waitFor(() => sub.messages.filter((m) => m.retain && m.topic.startsWith('SPIN/traffic/node/')).length === 4);
    core.emitTraffic(77, 1);
    await waitFor(() => sub.messages.some((m) => m.topic === 'SPIN/traffic' && m.payload.includes('"total_size":77')));
    expect(bridge.dropped).toBe(3);
  });
});

describe('the whole app on the home network', () => {
  let home: HomeNetwork;
  beforeAll(async () => {
    home = await createHomeNetwork();
  });
  afterAll(async () => {
    await home?.close();
  });

  function stateDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'fg-spin-mqtt-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** `npm run spin` as a user runs it, stopped with SIGTERM at the end. */
  async function spinCli(args: string[]): Promise<{ child: ChildProcess; out: () => string }> {
    const child = spawn(process.execPath, [SPIN_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    cleanups.push(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    });
    await waitFor(() => out.includes('spin: web view') || child.exitCode !== null, {
      timeoutMs: 45_000,
      what: 'spin to start (a Node process and the app on a busy machine)',
    });
    if (!out.includes('spin: web view')) throw new Error(`spin did not start:\n${out}`);
    return { child, out: () => out };
  }

  it('spin --mqtt URL: mosquitto_sub sees real traffic in SPIN format, each id announced by a retained nodeInfo first; RPC over MQTT', async () => {
    const mosquitto = await broker();
    const sub = await subscriber(mosquitto.port);
    await spinCli([
      '--netns',
      home.router.name,
      '--http',
      '0',
      '--mqtt',
      mosquitto.url,
      '--mqtt-rpc',
      '--state',
      stateDir(),
    ]);
    await generateTraffic(home, { rounds: 1 });

    const trafficMessages = () =>
      sub.messages.filter((m) => m.topic === 'SPIN/traffic' && m.payload.startsWith('{"command":"traffic"'));
    await waitFor(() => trafficMessages().length > 0, { timeoutMs: 10_000 });
    const announced = new Set<number>();
    const live = new Set<number>(); // announced and not cleared (deleted or merged away) since
    for (const m of sub.messages) {
      const body = JSON.parse(m.payload || 'null');
      if (m.topic.startsWith('SPIN/traffic/node/') && !body) live.delete(Number(m.topic.split('/')[3]));
      if (m.topic.startsWith('SPIN/traffic/node/') && body) {
        const info = nodeInfoSchema.parse(body);
        expect(m.topic).toBe(`SPIN/traffic/node/${info.result.id}`);
        expect(inSpinKeyOrder(info.result)).toBe(true);
        announced.add(info.result.id);
        live.add(info.result.id);
      }
      if (m.topic === 'SPIN/traffic' && body?.command === 'traffic') {
        expect(m.retain).toBe(false);
        const traffic = trafficSchema.parse(body);
        for (const f of traffic.result.flows)
          expect([announced.has(f.from), announced.has(f.to)]).toEqual([true, true]);
        expect(traffic.result.total_size).toBe(traffic.result.flows.reduce((a, f) => a + f.size, 0));
      }
    }
    // The LAN clients' flows to the WAN server's echo port show up.
    const flows = trafficMessages().flatMap((m) => trafficSchema.parse(JSON.parse(m.payload)).result.flows);
    expect(flows.some((f) => f.to_port === home.server.tcpPort && f.protocol === 6)).toBe(true);

    // Live deliveries carry retain 0 (MQTT 3.1.1); a late subscriber gets every announced node as retained.
    const late = await subscriber(mosquitto.port, 'SPIN/traffic/node/+');
    const missing = () => [...live].filter((id) => !late.messages.some((m) => m.topic === `SPIN/traffic/node/${id}`));
    await expect.poll(missing).toEqual([]);
    expect(late.messages.every((m) => m.retain)).toBe(true);

    const answers = await subscriber(mosquitto.port, 'SPIN/jsonrpc/a');
    await mosquittoPub(mosquitto.port, 'SPIN/jsonrpc/q', '{"jsonrpc":"2.0","id":"q1","method":"list_devices"}');
    await waitFor(() => answers.messages.length === 1);
    const reply = JSON.parse(answers.messages[0].payload);
    expect(reply.id).toBe('q1');
    const macs = reply.result.map((d: { mac: string }) => d.mac);
    expect(macs).toEqual(expect.arrayContaining(home.clients.map((c) => c.mac)));
  });

  it('embedded broker: mqtt.js over TCP and over WebSocket both receive the app’s traffic', async () => {
    const app = await startSpin({
      netns: home.router.name,
      httpPort: 0,
      mqtt: { broker: 'embedded', tcpPort: 0, wsPort: 0 },
      stateDir: stateDir(),
    });
    cleanups.push(() => app.close());
    const urls = [app.mqtt?.url, app.mqtt?.wsUrl] as string[];
    expect(urls[1]).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const received = await Promise.all(
      urls.map(async (url) => {
        const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000 });
        cleanups.push(() => c.endAsync(true));
        const topics: string[] = [];
        c.on('message', (topic, payload) => topics.push(`${topic} ${payload.toString().slice(0, 30)}`));
        await c.subscribeAsync('SPIN/traffic/#');
        return topics;
      }),
    );
    await generateTraffic(home, { rounds: 1, ipv6: false });
    for (const topics of received) {
      await waitFor(() => topics.some((t) => t.startsWith('SPIN/traffic {"command":"traffic"')), { timeoutMs: 10_000 });
      expect(topics.some((t) => t.startsWith('SPIN/traffic/node/'))).toBe(true);
    }
  });
});
