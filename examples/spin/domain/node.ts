/** A node of SPIN's cache (model.ts) and a device's flows to its peers (flows.ts). */
import { compareDomains, sortIps } from './ip.js';

export interface DeviceFlow {
  to: number;
  dstPort: number;
  icmpType: number;
  packets: number;
  bytes: number;
  /** Unix seconds of the last counted traffic. */
  lastseen: number;
}

/** A device's flows to one peer: the one flow, or several by flowKey. */
export type PeerFlows = DeviceFlow | Map<number, DeviceFlow>;

/** An address with its names; a device when it has a MAC (from the neighbour table). */
export interface SpinNode {
  readonly id: number;
  name?: string;
  mac?: string;
  readonly ips: Set<string>;
  /** Display form (case as seen, trailing dot). Shared and empty until the node has a name (most have none). */
  domains: ReadonlySet<string>;
  /** Unix seconds: creation, then the last counted traffic of one of its IPs. */
  lastseen: number;
  isBlocked: boolean;
  isExcepted: boolean;
  /** How many devices have flows to this node (referenced nodes do not expire). */
  refs: number;
  /** Held by blocked pairs and lists: such nodes never expire. */
  persistent: number;
  /**
   * Present on devices: peer id → that peer's flow, or its flows by port and ICMP type once there are several
   * (flows.ts flowKey). Most peers have one flow: a Map each would cost 100 000 flows 17 MB.
   */
  flows?: Map<number, PeerFlows>;
  /** How many flows `flows` holds. */
  flowCount: number;
}

export interface NodeInfo {
  mac?: string;
  ips?: Iterable<string>;
  domains?: Iterable<string>;
  name?: string;
}

/** SPIN's serialized node object (§3.1), optional keys omitted, keys in spind's order. */
export function nodeJson(n: SpinNode): Record<string, unknown> {
  const o: Record<string, unknown> = { id: n.id };
  if (n.name !== undefined) o.name = n.name;
  if (n.mac !== undefined) o.mac = n.mac;
  if (n.isBlocked) o.is_blocked = true;
  if (n.isExcepted) o.is_excepted = true;
  o.lastseen = n.lastseen;
  o.ips = sortIps(n.ips);
  o.domains = [...n.domains].sort(compareDomains);
  return o;
}
