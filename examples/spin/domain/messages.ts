/**
 * SPIN's MQTT messages (docs/spin-protocol.md §2): compact JSON envelopes
 * `{"command", "argument"?, "result"?}` with keys only when set, on spind's
 * topics. Key order follows spind's serializers.
 */

/** One MQTT publish as spind would make it. */
export interface SpinMessage {
  /** e.g. `SPIN/traffic`, `SPIN/traffic/node/57`, `SPIN/traffic/admin`, `SPIN/stat/conntrack/callback`. */
  readonly topic: string;
  /** Compact JSON without a trailing newline; `''` clears a retained topic. */
  readonly payload: string;
  readonly retain: boolean;
}

export const TRAFFIC_TOPIC = 'SPIN/traffic';
export const ADMIN_TOPIC = 'SPIN/traffic/admin';
export const nodeTopic = (id: number) => `SPIN/traffic/node/${id}`;

export interface TrafficFlow {
  from: number;
  to: number;
  protocol: number;
  from_port: number;
  to_port: number;
  size: number;
  count: number;
}

const msg = (topic: string, body: object, retain = false): SpinMessage => ({
  topic,
  payload: JSON.stringify(body),
  retain,
});

export function trafficMessage(flows: TrafficFlow[], timestamp: number): SpinMessage {
  let size = 0;
  let count = 0;
  for (const f of flows) {
    size += f.size;
    count += f.count;
  }
  return msg(TRAFFIC_TOPIC, {
    command: 'traffic',
    argument: '',
    result: { flows, timestamp, total_size: size, total_count: count },
  });
}

/**
 * Addresses a nodeInfo message carries at most: a CDN node with hundreds
 * would otherwise resend them all whenever it gains one. The message then
 * has the first NODE_INFO_MAX_IPS (sorted, as spind) and `ips_total`;
 * `get_device_data` returns them all.
 */
export const NODE_INFO_MAX_IPS = 32;

export const nodeInfoMessage = (node: { id: number } & Record<string, unknown>): SpinMessage => {
  const ips = node.ips;
  const result =
    Array.isArray(ips) && ips.length > NODE_INFO_MAX_IPS
      ? { ...node, ips: ips.slice(0, NODE_INFO_MAX_IPS), ips_total: ips.length }
      : node;
  return msg(nodeTopic(node.id), { command: 'nodeInfo', result }, true);
};

/** An empty retained message: clears the node's retained nodeInfo. */
export const clearNodeMessage = (id: number): SpinMessage => ({ topic: nodeTopic(id), payload: '', retain: true });

export const nodeMergedMessage = (id: number, into: number): SpinMessage =>
  msg(ADMIN_TOPIC, { command: 'nodeMerged', result: { id, 'merged-to': into } });

export const nodeDeletedMessage = (id: number): SpinMessage =>
  msg(ADMIN_TOPIC, { command: 'nodeDeleted', result: { id } });

export const dnsQueryMessage = (from: number, queriednode: number, query: string): SpinMessage =>
  msg(TRAFFIC_TOPIC, { command: 'dnsquery', result: { from, queriednode, query } });

export const blockedMessage = (f: TrafficFlow): SpinMessage => msg(TRAFFIC_TOPIC, { command: 'blocked', result: f });

/** A list broadcast; `command` is the list string the caller used (spind's behaviour). */
export const listMessage = (command: string, entries: string[]): SpinMessage =>
  msg(TRAFFIC_TOPIC, { command, result: entries });

export const serverRestartMessage = (): SpinMessage => msg(TRAFFIC_TOPIC, { command: 'serverRestart' });
