/** How the SPIN core (core.ts) is set up. */
import type { MacLookup } from './domain/announce.js';
import type { MonitorScope } from './domain/ingest-host.js';
import type { SpinPeriods } from './domain/periods.js';
import type { SpinStore } from './io/store.js';

export interface CoreOptions {
  store: SpinStore;
  netns?: string;
  periods?: Partial<SpinPeriods>;
  /** Addresses the ignore list starts with on first run and after reset_iplist_ignore (the router's own). */
  ownAddresses: () => Promise<string[]>;
  /** The router's own addresses (blocks covering them are refused unless forced); default ownAddresses. */
  routerAddresses?: () => Promise<string[]>;
  /** Asks the kernel for an address's MAC before a new MAC-less node is announced (announce.ts). */
  lookupMac?: MacLookup;
  /** Watch only traffic, DNS and neighbours of these prefixes (SIDN/spin #83, #88); none = everything. */
  monitor?: MonitorScope;
  namesFile?: string;
  leaseFile?: string;
  /** Publish traffic between two non-devices too (spind -l). */
  local?: boolean;
  /**
   * DNS servers (canonical addresses) whose answers seen passing through (a device asking them directly) may say
   * what a listed name resolves to; the router's own resolver's always may. None by default (ingest.ts).
   */
  trustedResolvers?: ReadonlySet<string>;
  /** nft table name (default `spin` → `flowgrab_spin`). */
  tableName?: string;
  /** Accept dots_signal (spind: dots_enabled). */
  dots?: boolean;
  /** Where notices go (the CLI logs them); never the console from here. */
  log?: (line: string) => void;
  now?: () => number;
}
