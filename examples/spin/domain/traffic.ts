/**
 * The flows SPIN reports: the per-second `traffic` aggregation of conntrack
 * deltas per (from, to, protocol, ports) flow, and the `blocked` messages of
 * dropped packets.
 */
import type { Compose } from './announce.js';
import type { IpList } from './lists.js';
import { blockedMessage, type TrafficFlow } from './messages.js';
import type { NodeModel, SpinNode } from './model.js';

/** A dropped packet's 5-tuple with its counts (read from the firewall's drop set). */
export interface Drop {
  family: 4 | 6;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  packets: number;
  bytes: number;
}

/** One second's traffic of a (from, to, protocol, ports) flow; the nodes as they were when counted. */
export interface Counted {
  from: SpinNode;
  to: SpinNode;
  proto: number;
  sport: number;
  dport: number;
  size: number;
  count: number;
}

/** The traffic counted since the last drain. */
export class TrafficTable {
  private aggs = new Map<string, Counted>();

  get size(): number {
    return this.aggs.size;
  }

  add(from: SpinNode, to: SpinNode, proto: number, sport: number, dport: number, size: number, count: number): void {
    // Keyed by node ids, not addresses: a short key, and no record's strings kept for the second.
    const key = `${from.id}|${to.id}|${proto}|${sport}|${dport}`;
    const a = this.aggs.get(key);
    if (a) {
      a.size += size;
      a.count += count;
    } else this.aggs.set(key, { from, to, proto, sport, dport, size, count });
  }

  /** Empties the table; the counts become flows when their message goes out (`trafficFlows`). */
  take(): Counted[] {
    const aggs = [...this.aggs.values()];
    this.aggs = new Map();
    return aggs;
  }
}

/** A second's counts as flows between the nodes the counted ones are now (`id`: see announce.ts Compose). */
export function trafficFlows(counted: Counted[], id: (n: SpinNode) => number | undefined): TrafficFlow[] {
  const flows: TrafficFlow[] = [];
  for (const a of counted) {
    const from = id(a.from);
    const to = id(a.to);
    if (from === undefined || to === undefined) continue;
    flows.push({
      from,
      to,
      protocol: a.proto,
      from_port: a.sport,
      to_port: a.dport,
      size: a.size,
      count: a.count,
    });
  }
  return flows;
}

/**
 * A `blocked` message's flow (docs/spin-protocol.md §2.4): a packet other than TCP
 * or UDP is reported with protocol 0 and ports 0. spind only says so for IPv4
 * because it lets IPv6 non-TCP/UDP packets of blocked nodes through (a fault
 * we do not reproduce, §7): we drop those too and report them the same way.
 */
export function blockedFlow(d: Drop, from: number, to: number): TrafficFlow {
  const ports = d.proto === 6 || d.proto === 17;
  return {
    from,
    to,
    protocol: ports ? d.proto : 0,
    from_port: ports ? d.sport : 0,
    to_port: ports ? d.dport : 0,
    size: d.bytes,
    count: d.packets,
  };
}

/** The `blocked` messages of the drops between addresses not ignored (their nodes created when new), built when they go out. */
export function blockedMessages(drops: Drop[], ignore: IpList, model: NodeModel): Compose[] {
  const msgs: Compose[] = [];
  for (const d of drops) {
    if (ignore.containsIp(d.src) || ignore.containsIp(d.dst)) continue;
    const from = model.nodeOfIp(d.src, false);
    const to = model.nodeOfIp(d.dst, false);
    msgs.push((id) => {
      const a = id(from);
      const b = id(to);
      return a === undefined || b === undefined ? undefined : blockedMessage(blockedFlow(d, a, b));
    });
  }
  return msgs;
}
