// What the bridge needs from a broker connection, embedded or external: a
// way to publish that says when it could not, and the requests that arrive
// on the JSON-RPC topic.

/** Topic spind subscribes to for JSON-RPC requests (docs/spin-protocol.md §2.2). */
export const RPC_REQUEST_TOPIC = 'SPIN/jsonrpc/q';
/** Topic spind publishes JSON-RPC replies on. */
export const RPC_REPLY_TOPIC = 'SPIN/jsonrpc/a';
/** Commands topic SPIN's page writes (`get_peak_info`, docs/spin-protocol.md §2.5). */
export const COMMANDS_TOPIC = 'SPIN/commands';
/** spind's MQTT client id (docs/spin-protocol.md §2.1). */
export const SPIN_CLIENT_ID = 'SPIN Daemon';

export interface TransportEvents {
  /** A (re)connection to the broker is ready: publish the startup messages. */
  onConnect(transport: Transport): void;
  /** A payload arrived on `SPIN/jsonrpc/q`. */
  onRequest(payload: Buffer): void;
  /** A payload arrived on `SPIN/commands`. */
  onCommand?(payload: Buffer): void;
}

export interface Transport {
  readonly url: string;
  readonly wsUrl: string | undefined;
  readonly connected: boolean;
  /** Queues one QoS 0 publish; false when it was not taken (broker down or backlog full). */
  publish(topic: string, payload: string, retain: boolean): boolean;
  /** Publishes taken but lost before they reached the broker (the connection went away). */
  readonly lost: number;
  close(): Promise<void>;
}

/** `host:port` for a URL, with brackets around IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
