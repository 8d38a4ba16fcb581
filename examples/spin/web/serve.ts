// The SPIN web view's request handler (being built; see ../contract.ts).
import type { WebHandler } from '../contract.js';

export interface WebOptions {
  /** WebSocket URL of the MQTT broker the page subscribes to; undefined = same host, port 1884, path /mqtt. */
  readonly mqttWsUrl?: string;
}

export function createWebHandler(_options: WebOptions = {}): WebHandler {
  return () => false;
}
