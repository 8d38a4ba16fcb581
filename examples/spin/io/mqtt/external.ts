// A connection to an external broker with mqtt.js (an optional dependency,
// loaded only when asked for). Reconnects with a bounded exponential
// back-off. Publishes wait in a bounded queue while the socket drains;
// while the broker is away nothing is taken: publishes report failure and
// the bridge counts them, as it counts what was queued when the connection
// went.
import type { MqttClient } from 'mqtt';
import { type QueueLimits, SerialQueue } from './serial-queue.js';
import {
  COMMANDS_TOPIC,
  RPC_REQUEST_TOPIC,
  SPIN_CLIENT_ID,
  type Transport,
  type TransportEvents,
} from './transport.js';

export interface ExternalOptions {
  readonly url: string;
  readonly clientId: string;
  /** First retry delay; doubles after every failed attempt up to `maxBackoffMs`. */
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Publishes waiting for the socket to drain; more are dropped. */
  readonly queue: QueueLimits;
  /** How long startMqtt waits for the first connection before going on without it. */
  readonly firstConnectMs: number;
  /** MQTT keepalive in seconds (spind: `pubsub_timeout` = 60). */
  readonly keepalive: number;
  /** Answer JSON-RPC on `SPIN/jsonrpc/q` (MqttOptions.rpc): off, the topic is not even subscribed to. */
  readonly rpc?: boolean;
}

export const EXTERNAL_DEFAULTS = {
  clientId: SPIN_CLIENT_ID,
  minBackoffMs: 250,
  maxBackoffMs: 10_000,
  queue: { maxMessages: 100_000, maxBytes: 32 * 1024 * 1024 },
  firstConnectMs: 3000,
  keepalive: 60,
} as const;

export interface ExternalTransport extends Transport {
  /** Successful connections after the first one. */
  readonly reconnects: number;
  /** The last connection error, if any. */
  readonly lastError: Error | undefined;
}

export async function connectExternalBroker(
  options: ExternalOptions,
  events: TransportEvents,
): Promise<ExternalTransport> {
  const mqtt = await loadMqtt();
  const client: MqttClient = mqtt.connect(options.url, {
    clientId: options.clientId,
    clean: true,
    keepalive: options.keepalive,
    // The back-off below owns reconnecting; mqtt.js's fixed period would not back off.
    reconnectPeriod: 0,
    connectTimeout: 5000,
    queueQoSZero: false,
    protocolVersion: 4,
  });

  let closed = false;
  let connections = 0;
  let lastError: Error | undefined;
  let backoff = options.minBackoffMs;
  let retryTimer: NodeJS.Timeout | undefined;

  const queue = new SerialQueue(options.queue, (item, done) => {
    client.publish(item.topic, item.payload, { qos: 0, retain: item.retain }, (error) => done(error));
  });

  client.on('error', (error) => {
    lastError = error;
  });
  // Ready = connected and subscribed, so a request sent right after start is heard.
  let onReady: (() => void) | undefined;
  // The RPC topic changes the firewall: only when asked for (this broker's rules are not ours to know).
  const topics = options.rpc ? [RPC_REQUEST_TOPIC, COMMANDS_TOPIC] : [COMMANDS_TOPIC];
  client.on('connect', () => {
    connections++;
    backoff = options.minBackoffMs;
    events.onConnect(transport);
    client.subscribe(topics, { qos: 0 }, (error) => {
      if (error) lastError = error;
      onReady?.();
    });
  });
  client.on('message', (topic, payload) => {
    if (topic === RPC_REQUEST_TOPIC && options.rpc) events.onRequest(payload);
    else if (topic === COMMANDS_TOPIC) events.onCommand?.(payload);
  });
  client.on('close', () => {
    queue.clear();
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (!closed) client.reconnect();
    }, backoff);
    backoff = Math.min(backoff * 2, options.maxBackoffMs);
  });

  const transport: ExternalTransport = {
    url: options.url,
    wsUrl: undefined,
    get connected() {
      return !closed && client.connected;
    },
    get reconnects() {
      return Math.max(0, connections - 1);
    },
    get lastError() {
      return lastError;
    },
    get lost() {
      return queue.lost;
    },
    publish(topic, payload, retain) {
      return !closed && client.connected && queue.push({ topic, payload, retain });
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      queue.stop();
      await client.endAsync(true);
    },
  };

  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.firstConnectMs);
    onReady = () => {
      clearTimeout(timer);
      onReady = undefined;
      resolve();
    };
  });
  return transport;
}

async function loadMqtt(): Promise<typeof import('mqtt')> {
  try {
    return await import('mqtt');
  } catch (error) {
    throw new Error('an external MQTT broker needs the optional package "mqtt" (npm install mqtt)', { cause: error });
  }
}
