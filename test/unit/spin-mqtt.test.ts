// The SPIN MQTT bridge against a fake core: the embedded broker over TCP and
// WebSocket, startup and live messages, JSON-RPC over MQTT, bad options, and
// an external broker (a bare aedes here) that goes away and comes back.
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { PARSE_ERROR_REPLY, type SpinMqttBridge, startMqtt } from '../../examples/spin/io/mqtt.js';
import { waitFor } from '../../src/testing/lab/netns.js';
import { FakeSpinCore } from '../helpers/spin-fake-core.js';

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function client(url: string): Promise<{ client: MqttClient; received: Received[] }> {
  // mqtt.js rebuilds WebSocket URLs without the brackets of an IPv6 host; hand it the URL as is.
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000, transformWsUrl: () => url });
  cleanups.push(() => c.endAsync(true));
  const received: Received[] = [];
  c.on('message', (topic, payload, packet) =>
    received.push({ topic, payload: payload.toString(), retain: packet.retain }),
  );
  await c.subscribeAsync('SPIN/#');
  return { client: c, received };
}

/** The probe's first truthy value, polled by waitFor, which throws once `ms` have gone by. */
async function until<T>(what: string, probe: () => T | undefined | false, ms = 10_000): Promise<T> {
  let v: T | undefined | false;
  await waitFor(() => Boolean((v = probe())), { timeoutMs: ms, intervalMs: 10, what });
  return v as T;
}

async function embedded(core = new FakeSpinCore()): Promise<{ core: FakeSpinCore; bridge: SpinMqttBridge }> {
  const bridge = await startMqtt(core, { broker: 'embedded', tcpPort: 0, wsPort: 0 });
  cleanups.push(() => bridge.close());
  return { core, bridge };
}

describe('embedded broker', () => {
  it('reports the actual ports and serves TCP and WebSocket clients the same messages', async () => {
    const { core, bridge } = await embedded();
    expect(bridge.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(bridge.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    expect(bridge.url).not.toBe('mqtt://127.0.0.1:0');

    const tcp = await client(bridge.url);
    const ws = await client(bridge.wsUrl as string);
    // Retained nodeInfo from the startup messages reaches late subscribers.
    for (const c of [tcp, ws]) {
      const infos = await until(
        'retained nodeInfo',
        () => c.received.filter((m) => m.topic.startsWith('SPIN/traffic/node/')).length === 4 && c.received,
      );
      const node4 = infos.find((m) => m.topic === 'SPIN/traffic/node/4');
      expect(node4?.retain).toBe(true);
      expect(JSON.parse(node4?.payload ?? '')).toMatchObject({
        command: 'nodeInfo',
        result: { id: 4, ips: ['198.51.100.10', '2001:db8:77::10'] },
      });
    }
    core.emitTraffic(4321, 7);
    for (const c of [tcp, ws]) {
      const traffic = await until('traffic', () =>
        c.received.find((m) => m.topic === 'SPIN/traffic' && m.payload.includes('"traffic"')),
      );
      expect(traffic.retain).toBe(false);
      expect(JSON.parse(traffic.payload).result).toMatchObject({ total_size: 4321, total_count: 7 });
    }
    expect(bridge.published).toBeGreaterThanOrEqual(9);
    expect(bridge.dropped).toBe(0);
  });

  it('answers JSON-RPC on SPIN/jsonrpc/a, with SPIN’s parse error for bad JSON and nothing for notifications', async () => {
    const { core, bridge } = await embedded();
    const { client: c, received } = await client(bridge.url);
    const replies = () => received.filter((m) => m.topic === 'SPIN/jsonrpc/a').map((m) => JSON.parse(m.payload));

    await c.publishAsync('SPIN/jsonrpc/q', JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'list_devices' }));
    const [reply] = await until('reply', () => replies().length === 1 && replies());
    expect(reply.id).toBe(7);
    expect(reply.result.map((d: { mac: string }) => d.mac)).toEqual([
      '02:00:00:00:77:11',
      '02:00:00:00:77:12',
      '02:00:00:00:77:13',
    ]);

    await c.publishAsync('SPIN/jsonrpc/q', '{"jsonrpc": "2.0", "method": ');
    await until('parse error', () => replies().length === 2);
    expect(replies()[1]).toEqual(PARSE_ERROR_REPLY);

    // A void method without id: the core returns undefined, so nothing is published.
    await c.publishAsync(
      'SPIN/jsonrpc/q',
      JSON.stringify({
        jsonrpc: '2.0',
        method: 'set_device_flow_block',
        params: { device: '02:00:00:00:77:11', node: 4, block: 1 },
      }),
    );
    await c.publishAsync(
      'SPIN/jsonrpc/q',
      JSON.stringify({ jsonrpc: '2.0', id: 'x', method: 'get_device_data', params: { node: 99 } }),
    );
    await until('error reply', () => replies().length === 3);
    expect(replies()[2]).toEqual({ jsonrpc: '2.0', id: 'x', error: { code: -1, message: 'Unknown node id' } });
    expect(core.flowBlocks.has('02:00:00:00:77:11/4')).toBe(true);
    expect(core.requests).toHaveLength(3);
  });

  it('a core feed that fails is reported and the RPC keeps working', async () => {
    const { core, bridge } = await embedded();
    const { client: c, received } = await client(bridge.url);
    core.messages.error(new Error('aggregation broke'));
    expect((bridge.feedError as Error).message).toBe('aggregation broke');
    await c.publishAsync('SPIN/jsonrpc/q', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'list_devices' }));
    await until('reply', () => received.some((m) => m.topic === 'SPIN/jsonrpc/a'));
  });

  it('listens on an IPv6 address with bracketed URLs', async () => {
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: 'embedded', host: '::1', tcpPort: 0, wsPort: 0 });
    cleanups.push(() => bridge.close());
    expect(bridge.url).toMatch(/^mqtt:\/\/\[::1\]:\d+$/);
    expect(bridge.wsUrl).toMatch(/^ws:\/\/\[::1\]:\d+\/mqtt$/);
    for (const url of [bridge.url, bridge.wsUrl as string]) {
      const { received } = await client(url);
      await until('retained nodeInfo', () => received.some((m) => m.topic === 'SPIN/traffic/node/1'));
    }
  });

  it('refuses bad options with a clear message and a port in use with the port', async () => {
    const core = new FakeSpinCore();
    await expect(startMqtt(core, { broker: 'http://example.test' })).rejects.toThrow(/broker: a broker URL such as/);
    await expect(startMqtt(core, { broker: 'embedded', tcpPort: 70_000 })).rejects.toThrow(/tcpPort/);
    const { bridge } = await embedded(core);
    const taken = Number(new URL(bridge.url).port);
    await expect(startMqtt(core, { broker: 'embedded', tcpPort: taken, wsPort: 0 })).rejects.toThrow(
      `127.0.0.1:${taken}: EADDRINUSE`,
    );
  });

  it('a subscriber that stops reading costs dropped messages, not unbounded memory', async () => {
    const { core, bridge } = await embedded();
    const { client: frozen } = await client(bridge.url);
    frozen.stream.pause();
    const big = 'x'.repeat(2000);
    for (let i = 0; i < 30_000; i++) core.messages.next({ topic: 'SPIN/traffic', payload: big, retain: false });
    // 60 MB were offered; the socket and aedes hold a bounded part of it, the rest is counted.
    expect(bridge.dropped).toBeGreaterThan(10_000);
    expect(bridge.published + bridge.dropped).toBe(30_000 + 8);
    // Another subscriber is not blocked for good: once the frozen one is gone, delivery resumes.
    frozen.stream.destroy();
    const { received } = await client(bridge.url);
    await until('delivery after the frozen client left', () => {
      core.emitTraffic(5, 1);
      return received.some((m) => m.payload.includes('"total_size":5'));
    });
  });

  it('close() frees both ports and stops publishing', async () => {
    const { core, bridge } = await embedded();
    await bridge.close();
    await bridge.close();
    for (const url of [bridge.url, bridge.wsUrl as string]) {
      await expect(mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 })).rejects.toThrow();
    }
    core.emitTraffic();
    expect(core.messages.observed).toBe(false);
  });
});

/** A bare aedes on a fixed port that can be stopped and started again. */
class ExternalBroker {
  private server?: Server;
  private broker?: Aedes;
  private sockets = new Set<Socket>();
  port = 0;
  readonly received: Received[] = [];
  /** Topics each client subscribed to, by client id. */
  readonly subscribed = new Map<string, string[]>();

  async start(): Promise<void> {
    this.broker = await Aedes.createBroker();
    this.broker.on('subscribe', (subs, client) => {
      if (client)
        this.subscribed.set(client.id, [...(this.subscribed.get(client.id) ?? []), ...subs.map((x) => x.topic)]);
    });
    this.broker.on('publish', (packet, client) => {
      if (client)
        this.received.push({ topic: packet.topic, payload: packet.payload.toString(), retain: packet.retain });
    });
    const broker = this.broker;
    this.server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      broker.handle(s);
    });
    await new Promise<void>((r) => this.server?.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server?.listening ? this.server.close(() => r()) : r()));
    await new Promise<void>((r) => (this.broker ? this.broker.close(() => r()) : r()));
    this.server = undefined;
    this.broker = undefined;
  }
}

describe('external broker', () => {
  it('counts what it drops while the broker is away, reconnects and republishes the startup messages', async () => {
    const ext = new ExternalBroker();
    await ext.start();
    cleanups.push(() => ext.stop());
    const core = new FakeSpinCore();
    const bridge = await startMqtt(
      core,
      { broker: `mqtt://127.0.0.1:${ext.port}` },
      { minBackoffMs: 50, maxBackoffMs: 200 },
    );
    cleanups.push(() => bridge.close());
    expect(bridge.connected).toBe(true);
    expect(bridge.wsUrl).toBeUndefined();
    await until('serverRestart', () => ext.received.some((m) => m.payload === '{"command":"serverRestart"}'));
    expect(ext.received.filter((m) => m.topic.startsWith('SPIN/traffic/node/')).every((m) => m.retain)).toBe(true);

    await ext.stop();
    await until('disconnect', () => !bridge.connected);
    for (let i = 0; i < 5; i++) core.emitTraffic();
    expect(bridge.dropped).toBe(5);

    ext.received.length = 0;
    await ext.start();
    await until('reconnect', () => bridge.connected);
    expect(bridge.reconnects).toBe(1);
    expect(core.startups).toBe(2);
    await until('serverRestart again', () => ext.received.some((m) => m.payload === '{"command":"serverRestart"}'));
    core.emitTraffic(99, 1);
    await until('traffic after reconnect', () => ext.received.some((m) => m.payload.includes('"total_size":99')));
    expect(bridge.dropped).toBe(5);
  });

  it('answers JSON-RPC on SPIN/jsonrpc/q only when asked to: that broker decides who may publish there', async () => {
    const ext = new ExternalBroker();
    await ext.start();
    cleanups.push(() => ext.stop());
    const core = new FakeSpinCore();
    const quiet = await startMqtt(core, { broker: `mqtt://127.0.0.1:${ext.port}` }, { clientId: 'quiet' });
    cleanups.push(() => quiet.close());
    await until('the bridge to subscribe', () => ext.subscribed.get('quiet'));
    expect(ext.subscribed.get('quiet')).toEqual(['SPIN/commands']);
    const page = await client(`mqtt://127.0.0.1:${ext.port}`);
    await page.client.publishAsync('SPIN/jsonrpc/q', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'list_devices' }));
    await quiet.close();

    const answering = await startMqtt(
      core,
      { broker: `mqtt://127.0.0.1:${ext.port}`, rpc: true },
      { clientId: 'answering' },
    );
    cleanups.push(() => answering.close());
    await until('the bridge to subscribe', () => ext.subscribed.get('answering'));
    expect(ext.subscribed.get('answering')).toEqual(['SPIN/jsonrpc/q', 'SPIN/commands']);
    await page.client.publishAsync('SPIN/jsonrpc/q', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'list_devices' }));
    await until('the answer', () => page.received.find((m) => m.topic === 'SPIN/jsonrpc/a'));
    // Only the request sent while it was asked to answer reached the core.
    expect(core.requests.map((r) => (r as { id: number }).id)).toEqual([2]);
  });

  it('starts without a broker and connects when one appears', async () => {
    const ext = new ExternalBroker();
    await ext.start();
    const port = ext.port;
    await ext.stop();
    const core = new FakeSpinCore();
    const bridge = await startMqtt(
      core,
      { broker: `mqtt://127.0.0.1:${port}` },
      { minBackoffMs: 50, maxBackoffMs: 100, firstConnectMs: 100 },
    );
    cleanups.push(() => bridge.close());
    expect(bridge.connected).toBe(false);
    core.emitTraffic();
    expect(bridge.dropped).toBe(1);
    await ext.start();
    cleanups.push(() => ext.stop());
    await until('connect', () => bridge.connected);
    expect(core.startups).toBe(1);
  });
});
