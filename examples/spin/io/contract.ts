// The seam between the SPIN example's core (model, aggregation, lists,
// enforcement, RPC methods, HTTP) and its MQTT bridge and web view. The core
// produces messages already in SPIN's wire format; the bridge only carries
// them, and carries JSON-RPC requests from `SPIN/jsonrpc/q` back to the core.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Observable } from 'rxjs';
import type { SpinMessage } from '../domain/messages.js';

export type { SpinMessage } from '../domain/messages.js';

/**
 * Handles one parsed JSON-RPC 2.0 request (or batch) and returns the reply
 * object to send, or undefined when nothing is to be sent (notifications).
 * Never throws: bad requests get JSON-RPC error replies.
 */
export type RpcHandler = (request: unknown) => Promise<unknown | undefined>;

export interface SpinCore {
  /** Everything the core publishes, in order. */
  readonly messages$: Observable<SpinMessage>;
  /**
   * What a broker connection starts with: `serverRestart`, the `block`,
   * `ignore` and `allow` list broadcasts, and the retained `nodeInfo` of
   * every live node.
   */
  startupMessages(): SpinMessage[];
  readonly handleRpc: RpcHandler;
  /** A `SPIN/commands` payload (`get_peak_info`) → the message to publish in reply, if any. */
  handleCommand?(payload: Buffer): SpinMessage | undefined;
}

export interface MqttOptions {
  /** `'embedded'` (default) runs a broker in-process; otherwise a broker URL such as `mqtt://127.0.0.1:1883`. */
  readonly broker: 'embedded' | string;
  /** Embedded broker: listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Embedded broker: MQTT over TCP port (default 1883; 0 = any free port). */
  readonly tcpPort?: number;
  /** Embedded broker: MQTT over WebSocket port, path `/mqtt` (default 1884; 0 = any free port). */
  readonly wsPort?: number;
  /**
   * External broker: answer JSON-RPC on `SPIN/jsonrpc/q` (default false). Whoever that broker lets publish
   * there may change the blocks, and a stock mosquitto with a WebSocket listener lets any web page do it: turn it
   * on only when the broker's ACL lets only trusted clients publish on `SPIN/jsonrpc/q` and read
   * `SPIN/jsonrpc/a`. (The embedded broker always answers it, to logged-in clients only.)
   */
  readonly rpc?: boolean;
}

export interface MqttBridge {
  /** The broker URL the bridge publishes to (the actual port when 0 was asked). */
  readonly url: string;
  /** WebSocket URL for browsers (`ws://host:port/mqtt`), when known. */
  readonly wsUrl: string | undefined;
  /** Messages that could not be published (broker down), counted, never queued without bound. */
  readonly dropped: number;
  close(): Promise<void>;
}

/** The web view's request handler: returns true when it answered the request. */
export type WebHandler = (req: IncomingMessage, res: ServerResponse) => boolean;
