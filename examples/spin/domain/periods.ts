/** Every timer of the SPIN example (docs/spin-protocol.md#flow-aging and docs/spin-protocol.md §3.8), configurable so tests can use short ones. */
export interface SpinPeriods {
  /** Conntrack counter poll and `traffic` publish (spind: 1 s). */
  trafficMs: number;
  /** Flow statistics / aging pass (spind design note, docs/spin-protocol.md#flow-aging: about a minute). */
  flowStatsMs: number;
  /** A flow idle this long goes when its device has more than `keepFlows` (spind design note, docs/spin-protocol.md#flow-aging: about 10 minutes). */
  flowIdleMs: number;
  /** Flows a device keeps however idle (spind design note, docs/spin-protocol.md#flow-aging: about 10). */
  keepFlows: number;
  /** Any flow idle this long goes (spind design note, docs/spin-protocol.md#flow-aging: about two weeks). */
  flowMaxIdleMs: number;
  /** Unreferenced, non-persistent nodes unseen this long are deleted (spind: 1800 s). */
  nodeRetainMs: number;
  /** Devices whose neighbour entry is gone expire after this long without traffic. */
  deviceRetainMs: number;
  /** How often node expiry runs (spind: 60 s). */
  nodeExpiryMs: number;
  /** Node identities are written to the store this often (lists and blocks are written at once). */
  storeSyncMs: number;
  /** Extra seconds a blocked name's address stays in the set after its DNS TTL. */
  dnsGraceS: number;
}

export const DEFAULT_PERIODS: SpinPeriods = {
  trafficMs: 1000,
  flowStatsMs: 60_000,
  flowIdleMs: 600_000,
  keepFlows: 10,
  flowMaxIdleMs: 14 * 24 * 3600_000,
  nodeRetainMs: 1_800_000,
  deviceRetainMs: 1_800_000,
  nodeExpiryMs: 60_000,
  storeSyncMs: 5_000,
  dnsGraceS: 5,
};
