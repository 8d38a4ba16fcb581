/**
 * MQTT sink: each record published as JSON to a topic made from a template
 * (`flowgrab/{family}/{src}`: fields of the record, dotted paths allowed).
 * While the broker is away the client reconnects and records wait in a
 * bounded queue; what does not fit is dropped and counted. `mqtt` is an
 * optional dependency, loaded only when an MQTT sink is made.
 */
import { FlowgrabError } from '../errors.js';
import { type NoticeObserver, publishNotice } from '../sources/notice.js';
import { Ring } from '../util/ring.js';
import { type MqttClientLike, SpooledMqttSink } from './mqtt-spool.js';

export type { MqttClientLike } from './mqtt-spool.js';

import { admitRecord, countError, emptyStats, type FlowSink, type SinkStats } from './sink.js';
import { Spool } from './spool/index.js';

/** Options of mqttSink(): broker, topic template, QoS, queue and spool. */
export interface MqttSinkOptions {
  /** mqtt://host:port, mqtts://…, ws://… */
  url: string;
  /** Topic template; `{path}` is replaced by that field of the record (`_` when absent). Default `flowgrab/flows/{family}`. */
  topic?: string;
  qos?: 0 | 1 | 2;
  retain?: boolean;
  /** Records held while the broker is away (default 1000); beyond that the oldest are dropped. */
  queueRecords?: number;
  clientId?: string;
  /** ms between reconnect attempts (default 1000). */
  reconnectMs?: number;
  /** Connect timeout in ms (default 5000). */
  connectTimeoutMs?: number;
  /** A durable on-disk spool instead of the in-memory queue: records survive broker outages and restarts. */
  spoolDir?: string;
  /** The spool's size limit in bytes (default 256 MiB); beyond it the oldest records are dropped and counted. */
  spoolBytes?: number;
  /** Spool loss notices (also on the `flowgrab:notice` channel). */
  notices?: NoticeObserver;
}

const FIELD = /\{([A-Za-z0-9_.]+)\}/g;

/**
 * A topic template compiled once: literal parts and the field paths between
 * them. Each `{path}` becomes the record's value there, with MQTT's wildcard
 * characters made harmless (`_` where the value is missing or not a scalar).
 */
export function compileTopic(template: string): (r: unknown) => string {
  const parts: (string | string[])[] = [];
  let last = 0;
  for (const m of template.matchAll(FIELD)) {
    parts.push(template.slice(last, m.index), m[1].split('.'));
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  if (parts.length === 1) return () => template;
  return (r) => {
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        out += part;
        continue;
      }
      let v: unknown = r;
      for (const k of part) v = v === null || typeof v !== 'object' ? undefined : (v as Record<string, unknown>)[k];
      out += v === undefined || v === null || typeof v === 'object' ? '_' : String(v).replace(/[+#/\0]/g, '_') || '_';
    }
    return out;
  };
}

/** The topic for a record (compiles the template each call; sinks compile it once). */
export function topicFor(template: string, r: unknown): string {
  return compileTopic(template)(r);
}

async function loadMqtt(): Promise<{ connect(url: string, o: object): MqttClientLike }> {
  try {
    const m = (await import('mqtt')) as unknown as { connect?: unknown; default?: { connect?: unknown } };
    const connect = (m.connect ?? m.default?.connect) as ((url: string, o: object) => MqttClientLike) | undefined;
    if (!connect) throw new Error('the mqtt module has no connect()');
    return { connect };
  } catch (err) {
    throw new FlowgrabError(
      'FG_ERR_INVALID_STATE',
      `the MQTT sink needs the optional dependency "mqtt": npm install mqtt (${(err as Error).message})`,
      { op: 'mqtt.load', cause: err },
    );
  }
}

/**
 * Publishes handed to the client and not yet written (QoS 0) or acknowledged (QoS 1/2); past it records wait
 * in the sink's own bounded queue. Unbounded, a broker that stopped reading made the client buffer 600 000
 * records (+705 MB) while the sink said nothing was queued or dropped.
 */
export const MQTT_MAX_INFLIGHT = 1000;

class MqttSink implements FlowSink {
  readonly kind = 'mqtt';
  private readonly st = emptyStats();
  /** A ring: with the broker away a full queue drops its oldest per record, which an array does in linear time. */
  private readonly queue = new Ring<{ topic: string; payload: string }>();
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private closed = false;
  /** close() counted what was in flight as dropped: their callbacks count nothing more. */
  private abandoned = false;
  private readonly topic: (r: unknown) => string;

  constructor(
    private readonly client: MqttClientLike,
    private readonly o: Required<Pick<MqttSinkOptions, 'topic' | 'qos' | 'retain' | 'queueRecords'>>,
  ) {
    this.topic = compileTopic(o.topic);
    client.on('connect', () => this.drain());
    client.on('error', (err) => countError(this.st, 'mqtt', err));
  }

  write(record: unknown): void {
    const payload = admitRecord(this.st, this.closed, record);
    if (payload === undefined) return;
    const m = { topic: this.topic(record), payload };
    if (this.client.connected && this.queue.length === 0 && this.inflight < MQTT_MAX_INFLIGHT) this.publish(m);
    else this.enqueue(m);
  }

  private enqueue(m: { topic: string; payload: string }): void {
    if (this.queue.pushDropOldest(m, this.o.queueRecords))
      this.drop(
        1,
        this.o.queueRecords
          ? 'broker away: queue full, oldest record dropped'
          : 'broker away: no queue (queueRecords 0), record dropped',
      );
    this.st.queued = this.queue.length;
  }

  private drop(n: number, why: string): void {
    this.st.dropped += n;
    this.st.lastError = why;
  }

  private publish(m: { topic: string; payload: string }): void {
    this.inflight++;
    this.client.publish(m.topic, m.payload, { qos: this.o.qos, retain: this.o.retain }, (err) => {
      // Closed with it in flight: already counted as dropped.
      if (this.abandoned) return;
      this.inflight--;
      if (err) {
        // Lost with the connection: keep it for the next one (bounded) rather than lose it.
        if (!this.closed && !this.client.connected) this.enqueue(m);
        else this.drop(1, `publish: ${err.message}`);
      } else {
        this.st.sent++;
        this.st.messages++;
      }
      if (this.queue.length > 0) this.drain();
      else this.settle();
    });
  }

  private drain(): void {
    while (this.queue.length > 0 && this.client.connected && this.inflight < MQTT_MAX_INFLIGHT) {
      const m = this.queue.shift();
      if (m) this.publish(m);
    }
    this.st.queued = this.queue.length;
    this.settle();
  }

  private settle(): void {
    if (this.inflight > 0 || (this.queue.length > 0 && this.client.connected)) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when every record published so far is acknowledged (QoS 1/2) or written (QoS 0); queued records wait for the broker. */
  flush(): Promise<void> {
    if (this.inflight === 0 && (this.queue.length === 0 || !this.client.connected)) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.client.connected) {
      const t = new Promise<void>((r) => setTimeout(r, 2000).unref());
      await Promise.race([this.flush(), t]);
    }
    this.closed = true;
    if (this.queue.length > 0) {
      this.drop(this.queue.length, 'closed with records queued (broker away)');
      this.queue.clear();
      this.st.queued = 0;
    }
    if (this.inflight > 0) this.drop(this.inflight, 'closed with publishes not written or acknowledged');
    this.abandoned = true;
    this.inflight = 0;
    await new Promise<void>((r) => this.client.end(true, {}, () => r()));
  }

  stats(): SinkStats {
    return { ...this.st };
  }
}

/** Connects (in the background: records queue until the broker answers) and returns the sink. */
export async function mqttSink(o: MqttSinkOptions): Promise<FlowSink> {
  const qos = o.qos ?? 0;
  if (qos !== 0 && qos !== 1 && qos !== 2)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `qos must be 0, 1 or 2, got ${String(qos)}`);
  if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(o.url))
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `MQTT url must be mqtt://HOST[:PORT] (or mqtts, ws, wss), got ${JSON.stringify(o.url)}`,
    );
  const queueRecords = o.queueRecords ?? 1000;
  if (!Number.isInteger(queueRecords) || queueRecords < 0)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `queueRecords must be an integer ≥ 0, got ${queueRecords}`);
  const mqtt = await loadMqtt();
  // Opened before connecting: a spool in use by another process fails here, with nothing left behind.
  const spool =
    o.spoolDir === undefined
      ? undefined
      : new Spool({
          dir: o.spoolDir,
          maxBytes: o.spoolBytes,
          onDrop: (n, why) =>
            publishNotice(
              { kind: 'loss', source: 'mqtt', where: 'reader', count: n, message: why, ts: Date.now() },
              o.notices,
            ),
        });
  const client = mqtt.connect(o.url, {
    clientId: o.clientId ?? `flowgrab-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: o.reconnectMs ?? 1000,
    connectTimeout: o.connectTimeoutMs ?? 5000,
    // Our own queue is the bounded one; the client's offline queue would grow without limit.
    queueQoSZero: false,
    clean: true,
  });
  if (spool)
    return new SpooledMqttSink(client, spool, compileTopic(o.topic ?? 'flowgrab/flows/{family}'), {
      qos,
      retain: o.retain ?? false,
    });
  return new MqttSink(client, {
    topic: o.topic ?? 'flowgrab/flows/{family}',
    qos,
    retain: o.retain ?? false,
    queueRecords,
  });
}
