// MQTT bridge for the SPIN example: an embedded broker (TCP and WebSocket)
// or an external one; publishes the core's messages and answers JSON-RPC
// over `SPIN/jsonrpc/q` → `SPIN/jsonrpc/a` (docs/spin-protocol.md §2).
import type { Subscription } from 'rxjs';
import { z } from 'zod';
import type { MqttBridge, MqttOptions, SpinCore, SpinMessage } from './contract.js';
import type { BrokerAccess } from './mqtt/access.js';
import { startEmbeddedBroker } from './mqtt/embedded.js';
import { connectExternalBroker, EXTERNAL_DEFAULTS } from './mqtt/external.js';
import { RPC_REPLY_TOPIC, type Transport } from './mqtt/transport.js';

export { RPC_REPLY_TOPIC, RPC_REQUEST_TOPIC, SPIN_CLIENT_ID } from './mqtt/transport.js';

/** Options beyond the contract's, for tests and tuning. */
export interface BridgeTuning {
  /** External broker: client id (default spind's `SPIN Daemon`). */
  readonly clientId?: string;
  /** External broker: first and largest reconnect delay. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** External broker: how long to wait for the first connection before starting without it. */
  readonly firstConnectMs?: number;
  /** JSON-RPC requests being answered at once; more are dropped and counted. */
  readonly maxRpcInFlight?: number;
  /** Embedded broker: logins, topic rules, WebSocket origins (mqtt/access.ts). */
  readonly access?: BrokerAccess;
}

export interface SpinMqttBridge extends MqttBridge {
  readonly connected: boolean;
  /** Messages taken for the broker (those lost later are counted in `dropped` as well). */
  readonly published: number;
  /** Successful reconnections to an external broker. */
  readonly reconnects: number;
  /** JSON-RPC requests dropped because too many were in flight. */
  readonly rpcDropped: number;
  /** Why the core's message feed ended with an error, if it did. */
  readonly feedError: unknown;
}

/** spind's reply to a body that does not parse (docs/spin-protocol.md §1.2). */
export const PARSE_ERROR_REPLY = {
  jsonrpc: '2.0',
  error: { code: 1, message: 'Wrong JSON-RPC version, expected 2.0' },
};

const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'];

const port = z.number().int().min(0).max(65_535);
const optionsSchema = z.object({
  broker: z.union([
    z.literal('embedded'),
    z.string().refine((url) => URL.canParse(url) && BROKER_PROTOCOLS.includes(new URL(url).protocol), {
      message: `a broker URL such as mqtt://127.0.0.1:1883 (protocols ${BROKER_PROTOCOLS.join(' ')}) or 'embedded'`,
    }),
  ]),
  host: z.string().min(1).default('127.0.0.1'),
  tcpPort: port.default(1883),
  wsPort: port.default(1884),
  rpc: z.boolean().default(false),
});

/** `SPIN/commands` answered per second (SPIN's page asks every 30 s while a node is selected). */
const COMMANDS_PER_S = 20;

/** Publishes waiting for the embedded broker (a subscriber that stops reading holds it up to aedes' drain timeout). */
const EMBEDDED_QUEUE = { maxMessages: 100_000, maxBytes: 32 * 1024 * 1024 };

export async function startMqtt(
  core: SpinCore,
  options: MqttOptions,
  tuning: BridgeTuning = {},
): Promise<SpinMqttBridge> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`);
    throw new Error(`invalid MQTT options: ${issues.join('; ')}`);
  }
  const opts = parsed.data;
  const counters = { published: 0, dropped: 0, rpcDropped: 0 };
  let closing = false;
  const maxRpcInFlight = tuning.maxRpcInFlight ?? 64;
  let rpcInFlight = 0;
  let transport: Transport | undefined;
  const commandWindow = { second: 0, count: 0 };

  const send = (t: Transport | undefined, message: SpinMessage): void => {
    if (t?.publish(message.topic, message.payload, message.retain)) counters.published++;
    else counters.dropped++;
  };

  const answer = async (payload: Buffer): Promise<void> => {
    let request: unknown;
    try {
      request = JSON.parse(payload.toString('utf8'));
    } catch {
      send(transport, { topic: RPC_REPLY_TOPIC, payload: JSON.stringify(PARSE_ERROR_REPLY), retain: false });
      return;
    }
    const reply = await core.handleRpc(request);
    if (reply !== undefined && !closing) {
      send(transport, { topic: RPC_REPLY_TOPIC, payload: JSON.stringify(reply), retain: false });
    }
  };

  const events = {
    onConnect(t: Transport) {
      // Set here too: a request may arrive before startMqtt's await returns the transport.
      transport = t;
      for (const message of core.startupMessages()) send(t, message);
    },
    onCommand(payload: Buffer) {
      // Anyone may publish on SPIN/commands: at most COMMANDS_PER_S answers a second.
      const second = Math.floor(Date.now() / 1000);
      if (second !== commandWindow.second) Object.assign(commandWindow, { second, count: 0 });
      if (closing || ++commandWindow.count > COMMANDS_PER_S) return;
      const reply = core.handleCommand?.(payload);
      if (reply) send(transport, reply);
    },
    onRequest(payload: Buffer) {
      if (closing) return;
      if (rpcInFlight >= maxRpcInFlight) {
        counters.rpcDropped++;
        return;
      }
      rpcInFlight++;
      // handleRpc never throws by contract; a broken one must still not kill the bridge.
      answer(payload)
        .catch(() => {})
        .finally(() => rpcInFlight--);
    },
  };

  transport =
    opts.broker === 'embedded'
      ? await startEmbeddedBroker(
          {
            host: opts.host,
            tcpPort: opts.tcpPort,
            wsPort: opts.wsPort,
            queue: EMBEDDED_QUEUE,
            access: tuning.access,
          },
          events,
        )
      : await connectExternalBroker(
          { ...EXTERNAL_DEFAULTS, ...definedOnly({ ...tuning, access: undefined }), url: opts.broker, rpc: opts.rpc },
          events,
        );
  const live = transport;
  let failure: unknown;
  const subscription: Subscription = core.messages$.subscribe({
    next: (message) => send(live, message),
    // A core that fails stops the feed; the bridge stays up for RPC and says why.
    error: (error) => {
      failure = error;
    },
  });

  return {
    url: live.url,
    wsUrl: live.wsUrl,
    get connected() {
      return live.connected;
    },
    get dropped() {
      return counters.dropped + live.lost;
    },
    get published() {
      return counters.published;
    },
    get rpcDropped() {
      return counters.rpcDropped;
    },
    get feedError() {
      return failure;
    },
    get reconnects() {
      return 'reconnects' in live ? (live.reconnects as number) : 0;
    },
    async close() {
      if (closing) return;
      closing = true;
      subscription.unsubscribe();
      await live.close();
    },
  };
}

function definedOnly(tuning: BridgeTuning): Partial<BridgeTuning> {
  return Object.fromEntries(Object.entries(tuning).filter(([, v]) => v !== undefined));
}
