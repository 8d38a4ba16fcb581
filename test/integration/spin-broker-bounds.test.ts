/** The SPIN example's embedded broker, against a LAN host that only opens connections (anonymous MQTT is allowed). */
import { createConnection, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { MAX_BROKER_CONNECTIONS } from '../../examples/spin/io/mqtt/embedded.js';
import { startMqtt } from '../../examples/spin/io/mqtt.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { FakeSpinCore } from '../helpers/spin-fake-core.js';

/** MQTT 3.1.1 CONNECT: clean session, keepalive 60 s, an empty client id (the broker makes one). */
const CONNECT = Buffer.from('100c00044d5154540402003c0000', 'hex');

describe('embedded broker connection bound', () => {
  it(`takes ${MAX_BROKER_CONNECTIONS} connections at once; the next is closed, and a place freed is taken again`, async () => {
    const bridge = await startMqtt(new FakeSpinCore(), { broker: 'embedded', tcpPort: 0, wsPort: 0 });
    const port = Number(new URL(bridge.url).port);
    const socks: Socket[] = [];
    /** A connection that says CONNECT: resolves 'connack' when the broker answers, 'closed' when it hangs up. */
    const mqttConnect = () =>
      new Promise<'connack' | 'closed'>((resolve) => {
        const s = createConnection({ host: '127.0.0.1', port }, () => s.write(CONNECT));
        socks.push(s);
        s.on('data', (d: Buffer) => d[0] === 0x20 && resolve('connack'));
        s.on('close', () => resolve('closed'));
        s.on('error', () => {});
      });
    try {
      // The bound's worth of connections that never say anything.
      const idle: Socket[] = [];
      for (let i = 0; i < MAX_BROKER_CONNECTIONS; i++) {
        const s = createConnection({ host: '127.0.0.1', port });
        s.on('error', () => {});
        idle.push(s);
        socks.push(s);
      }
      await waitFor(() => idle.every((s) => !s.connecting), { what: 'the idle connections', timeoutMs: 30_000 });
      expect(await mqttConnect()).toBe('closed');
      // One leaves: a client is served again (the server may see the close a moment after the client does).
      idle[0].destroy();
      let answer: 'connack' | 'closed' = 'closed';
      for (let i = 0; i < 50 && answer !== 'connack'; i++) answer = await mqttConnect();
      expect(answer).toBe('connack');
    } finally {
      for (const s of socks) s.destroy();
      await bridge.close();
    }
  }, 60_000);
});
