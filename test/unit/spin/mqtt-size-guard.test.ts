/** The embedded broker's packet size bound: packets pass unchanged however they are cut; an oversized one ends the stream. */
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MAX_MQTT_PACKET, MqttSizeGuard } from '../../../examples/spin/io/mqtt/size-guard.js';

const publish = (topic: string, size: number) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload: Buffer.alloc(size, 0x61),
    qos: 0,
    dup: false,
    retain: false,
  } as mqttPacket.IPublishPacket);

/** Feeds `bytes` cut at `cuts` through a guard; what came out, or the error. */
async function through(bytes: Buffer, cuts: number[], max = MAX_MQTT_PACKET): Promise<Buffer | Error> {
  const g = new MqttSizeGuard(max);
  const out: Buffer[] = [];
  g.on('data', (d: Buffer) => out.push(d));
  const done = new Promise<Buffer | Error>((resolve) => {
    g.on('error', resolve);
    g.on('end', () => resolve(Buffer.concat(out)));
  });
  const at = [0, ...[...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  for (let i = 1; i < at.length; i++) g.write(bytes.subarray(at[i - 1], at[i]));
  g.end();
  return done;
}

describe('MqttSizeGuard', () => {
  it('lets packets under the limit through unchanged, however the stream is cut (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(130_000), { maxLength: 30 }),
        async (sizes, cuts) => {
          const bytes = Buffer.concat([
            mqttPacket.generate({ cmd: 'pingreq' }),
            ...sizes.map((n, i) => publish(`SPIN/commands/${i}`, n)),
          ]);
          expect(await through(bytes, cuts)).toEqual(bytes);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('ends the stream at a packet over the limit, from its header alone', async () => {
    const big = publish('SPIN/commands', MAX_MQTT_PACKET + 1);
    // Only the header and a little of the body: the guard does not wait for the 256 KiB.
    const r = await through(Buffer.concat([publish('a', 10), big.subarray(0, 100)]), [3, 50]);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toMatch(/MQTT packet of \d+ bytes is over the 262144-byte limit/);
    // A remaining length with a fifth continuation byte is not MQTT.
    expect(await through(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), [])).toBeInstanceOf(Error);
    expect((await through(publish('t', MAX_MQTT_PACKET - 64), [7])) as Buffer).toHaveLength(
      publish('t', MAX_MQTT_PACKET - 64).length,
    );
  });
});
