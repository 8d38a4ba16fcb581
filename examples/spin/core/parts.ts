/**
 * What the core's modules (core/*.ts) share of `Core`: its state and the few
 * of its methods they call back, handed over once by its constructor.
 */
import type { Announcer } from '../domain/announce.js';
import type { Blocks } from '../domain/blocks.js';
import type { IpList, ListName } from '../domain/lists.js';
import { MAX_IPS_PER_NODE, type NodeModel, type SpinNode } from '../domain/model.js';
import type { DeviceNames } from '../domain/names.js';
import type { PeakTable } from '../domain/peaks.js';
import type { SpinPeriods } from '../domain/periods.js';
import type { RouterGuard } from '../domain/protect.js';
import type { TrafficTable } from '../domain/traffic.js';
import type { Enforcer } from '../enforcer.js';
import type { SpinStore } from '../io/store.js';
import type { CoreOptions } from '../options.js';

/** Bounds on what callers can make the app hold (each entry costs memory and firewall work). */
export const RPC_LIMITS = {
  listEntries: 10_000,
  rpcNodes: 500,
  nodeIps: MAX_IPS_PER_NODE,
  blockedPairs: 10_000,
} as const;

/** How a list command was asked for. */
export interface ListChange {
  /** The list name as the caller wrote it: the broadcast carries it (spind's behaviour). Default: the list's name. */
  as?: string;
  /** Block even what would cut the router (loopback, its own addresses, too wide a prefix). */
  force?: boolean;
}

export interface CoreCounters {
  conntrack: number;
  dns: number;
  neigh: number;
  trafficMessages: number;
  blocked: number;
  firewallErrors: number;
}

export interface CoreParts {
  readonly opts: CoreOptions;
  readonly periods: SpinPeriods;
  readonly model: NodeModel;
  readonly store: SpinStore;
  readonly lists: Record<ListName, IpList>;
  readonly names: DeviceNames;
  readonly router: RouterGuard;
  readonly peaks: PeakTable;
  /** Live nodes made by `node_add_ip node=0` (bounded by RPC_LIMITS). */
  readonly rpcNodes: Set<number>;
  readonly announcer: Announcer;
  readonly traffic: TrafficTable;
  readonly blocks: Blocks;
  readonly enforcer: Enforcer;
  readonly counters: CoreCounters;
  readonly dirty: Set<SpinNode>;
  readonly deletedIds: Set<number>;
  /** True once `close` has begun. */
  closed(): boolean;
  // Core's own methods, called through it.
  node(id: number, code?: number): SpinNode;
  isIgnored(n: SpinNode): boolean;
  flushNodeInfo(): void;
  syncStore(): void;
  liveMac(mac: string): boolean;
  log(line: string): void;
}
