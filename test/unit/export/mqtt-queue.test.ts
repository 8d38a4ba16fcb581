import { describe, expect, it } from 'vitest';
import { mqttSink } from '../../../src/export/mqtt.js';
import { freePort } from '../../helpers/mosquitto.js';

/** A sink whose broker is away (nothing listens on a port just found free): every record goes to its queue. */
async function awaySink(queueRecords: number) {
  const port = await freePort();
  return mqttSink({ url: `mqtt://127.0.0.1:${port}`, queueRecords, reconnectMs: 60_000, connectTimeoutMs: 60_000 });
}

describe('MQTT sink queue, broker away', () => {
  it('holds the newest queueRecords records and counts every other as dropped', async () => {
    const sink = await awaySink(3);
    for (let i = 0; i < 10; i++) sink.write({ family: 'ipv4', i });
    expect(sink.stats()).toMatchObject({ queued: 3, dropped: 7, sent: 0 });
    await sink.close();
    // Closed with the broker still away: the 3 queued are dropped too, each record counted once.
    expect(sink.stats()).toMatchObject({ queued: 0, dropped: 10 });
  });

  it('queueRecords 0 queues nothing: each record is dropped, not both dropped and queued', async () => {
    const sink = await awaySink(0);
    for (let i = 0; i < 4; i++) sink.write({ family: 'ipv4', i });
    expect(sink.stats()).toMatchObject({ queued: 0, dropped: 4 });
    await sink.close();
    expect(sink.stats()).toMatchObject({ queued: 0, dropped: 4 });
  });
});
