/**
 * What the record handlers in ingest.ts need of the Core: its parts, named
 * here by their own modules' types so ingest.ts does not import core.ts
 * (which imports ingest.ts).
 */

import type { CoreOptions } from '../options.js';
import type { Announcer } from './announce.js';
import type { Blocks } from './blocks.js';
import type { IpList, ListName } from './lists.js';
import type { NodeModel } from './model.js';
import type { Neighbours } from './neighbours.js';
import type { SpinPeriods } from './periods.js';
import type { TrafficTable } from './traffic.js';

export interface IngestHost {
  readonly periods: SpinPeriods;
  readonly model: NodeModel;
  readonly lists: Record<ListName, IpList>;
  readonly opts: CoreOptions;
  readonly announcer: Announcer;
  readonly traffic: TrafficTable;
  readonly blocks: Blocks;
  readonly neighbours: Neighbours;
  readonly counters: { conntrack: number; dns: number; neigh: number };
  flushNodeInfo(): void;
  followNames(names: string[], ip: string, exp: number): void;
}
