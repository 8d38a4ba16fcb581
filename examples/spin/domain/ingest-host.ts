/**
 * What the record handlers in ingest.ts need of the Core: its parts, named
 * here by their own modules' types so ingest.ts does not import core.ts
 * (which imports ingest.ts).
 */

import type { Announcer } from './announce.js';
import type { Blocks } from './blocks.js';
import type { Prefix } from './ip.js';
import type { IpList, ListName } from './lists.js';
import type { NodeModel } from './model.js';
import type { Neighbours } from './neighbours.js';
import type { PendingDeltas } from './pending.js';
import type { SpinPeriods } from './periods.js';
import type { TrafficTable } from './traffic.js';

/**
 * What monitoring is limited to: the prefixes given and the subnets of the
 * interfaces named (link-local ones left out: every interface has fe80::/64;
 * a neighbour on a named interface is in scope by its interface).
 */
export interface MonitorScope {
  prefixes: Prefix[];
  interfaces: string[];
}

export interface IngestHost {
  readonly periods: SpinPeriods;
  readonly model: NodeModel;
  readonly lists: Record<ListName, IpList>;
  /**
   * `local`: publish traffic between two non-devices too (spind -l); `monitor`: none = everything;
   * `trustedResolvers`: DNS servers (canonical addresses) whose answers passing through may fill name lists.
   */
  readonly opts: {
    readonly local?: boolean;
    readonly monitor?: MonitorScope;
    readonly trustedResolvers?: ReadonlySet<string>;
  };
  readonly announcer: Announcer;
  readonly traffic: TrafficTable;
  readonly blocks: Blocks;
  readonly neighbours: Neighbours;
  /** Deltas waiting for an end to become a device. */
  readonly pending: PendingDeltas;
  readonly counters: { conntrack: number; dns: number; neigh: number };
  flushNodeInfo(): void;
  followNames(names: string[], ip: string, exp: number): void;
}
