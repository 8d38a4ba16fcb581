// The SPIN MQTT bridge against Debian's mosquitto, checked with Debian's
// mosquitto_sub / mosquitto_pub: SPIN/traffic messages and retained
// nodeInfo in SPIN's format, JSON-RPC over MQTT, and a broker that goes away
// and comes back.
import { afterEach, describe, expect, it } from 'vitest';
import { PARSE_ERROR_REPLY, startMqtt } from '../../examples/spin/mqtt.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { freePort, Mosquitto, MosquittoSub, mosquittoPub } from '../helpers/mosquitto.js';
import { FakeSpinCore } from '../helpers/spin-fake-core.js';
import { nodeInfoSchema, trafficSchema } from '../helpers/spin-schemas.js';

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

  it('answers an RPC sent with mosquitto_pub on SPIN/jsonrpc/a', async () => {
    const mosquitto = await broker();
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: mosquitto.url });
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
