/**
 * The MQTT sink with the durable spool instead of its in-memory queue
 * (`spoolDir`): records are appended to the spool and published from it
 * while the broker is connected, each confirmed in the spool when its
 * publish completes (PUBACK/PUBCOMP for QoS 1/2, written for QoS 0). A
 * broker away for hours, or a `kill -9` of the exporter, costs nothing but
 * what the spool limit forces (counted); after a reconnect what was in
 * flight is published again (at-least-once).
 */
import { admitRecord, countError, emptyStats, type FlowSink, type SinkStats } from './sink.js';
import { type Spool, SpoolPump } from './spool/index.js';

/** The part of an mqtt.js client the sinks use. */
export interface MqttClientLike {
  connected: boolean;
  on(ev: string, f: (...a: unknown[]) => void): unknown;
  publish(
    topic: string,
    payload: string,
    opts: { qos: 0 | 1 | 2; retain: boolean },
    cb: (err?: Error) => void,
  ): unknown;
  end(force: boolean, opts: object, cb: () => void): unknown;
}

const enc = (topic: string, payload: string): Buffer => {
  const t = Buffer.byteLength(topic);
  const b = Buffer.allocUnsafe(2 + t + Buffer.byteLength(payload));
  b.writeUInt16BE(t, 0);
  b.write(topic, 2);
  b.write(payload, 2 + t);
  return b;
};

export class SpooledMqttSink implements FlowSink {
  readonly kind = 'mqtt';
  private readonly st = emptyStats();
  private readonly pump: SpoolPump;
  private closed = false;

  constructor(
    private readonly client: MqttClientLike,
    private readonly spool: Spool,
    private readonly topic: (r: unknown) => string,
    o: { qos: 0 | 1 | 2; retain: boolean },
  ) {
    this.pump = new SpoolPump(spool, {
      window: o.qos === 0 ? 1024 : 256,
      ready: () => client.connected,
      // A topic length and the topic at least (enc): a damaged entry is not published, nor retried.
      valid: (b) => b.length >= 2 && 2 + b.readUInt16BE(0) <= b.length,
      onRejected: () => {
        this.st.rejected++;
      },
      send: (b, done) => {
        const t = b.readUInt16BE(0);
        client.publish(
          b.toString('utf8', 2, 2 + t),
          b.toString('utf8', 2 + t),
          { qos: o.qos, retain: o.retain },
          (err) => done(err),
        );
      },
      onSent: () => {
        this.st.sent++;
        this.st.messages++;
      },
      onError: (err) => countError(this.st, 'publish', err),
    });
    // A new connection: what was in flight on the old one goes again.
    client.on('connect', () => {
      this.pump.restart();
      this.pump.kick();
    });
    client.on('error', (err) => countError(this.st, 'mqtt', err));
  }

  write(record: unknown): void {
    const payload = admitRecord(this.st, this.closed, record);
    if (payload !== undefined && !this.spool.append(enc(this.topic(record), payload))) {
      this.st.rejected++;
      this.st.lastError = 'record larger than the spool entry limit';
    }
  }

  async flush(): Promise<void> {
    this.spool.flush();
  }

  /** Publishes what the spool holds while the broker is there (up to 10 s); the rest stays for the next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.pump.drain(10_000);
    this.closed = true;
    this.pump.stop();
    this.spool.close();
    await new Promise<void>((r) => this.client.end(true, {}, () => r()));
  }

  stats(): SinkStats & { spooled: number; recovered: number } {
    const sp = this.spool.stats();
    return {
      ...this.st,
      dropped: this.st.dropped + sp.dropped,
      queued: sp.pending,
      spooled: sp.pending,
      recovered: sp.recovered,
    };
  }
}
