/**
 * NeighRecord: the zod schema is the single source of the type (docs/architecture.md
 * #records). build.ts makes records from kernel entries without loading zod
 * (~60 ms of startup, more than a whole CLI dump takes).
 */
import { z } from 'zod';

/** The kernel's NUD state names (zod schema). */
export const NeighState = z.enum([
  'INCOMPLETE',
  'REACHABLE',
  'STALE',
  'DELAY',
  'PROBE',
  'FAILED',
  'NOARP',
  'PERMANENT',
  'NONE',
]);

/** A neighbour (ARP/NDP) entry or change: ip, mac, interface, NUD state, router flag, bridge port. */
export const NeighRecord = z.object({
  /**
   * `dump`: in the table when asked. `new`: an ip+interface became visible
   * (first seen usable, or at all with includeUnusable). `update`: its state,
   * MAC, router flag or bridge port changed. `delete`: it left the visible
   * set: the kernel deleted it, or (without includeUnusable) it turned
   * FAILED/INCOMPLETE; the record keeps the last MAC and port reported.
   */
  type: z.enum(['dump', 'new', 'update', 'delete']),
  /** ms since the epoch, when flowgrab received the message. */
  ts: z.number(),
  family: z.enum(['ipv4', 'ipv6']),
  ifindex: z.number().int(),
  ifname: z.string(),
  ip: z.string(),
  /** Lower-case colon form; absent when the kernel has none (INCOMPLETE, FAILED). */
  mac: z.string().optional(),
  /**
   * NUD state bits by name, as `ip -j neigh` prints them: one name almost
   * always (`['REACHABLE']`), `['NONE']` for 0. An array because the kernel's
   * field is a bit mask.
   */
  state: z.array(NeighState).readonly(),
  /** NTF_ROUTER: the IPv6 neighbour said it is a router. */
  router: z.boolean(),
  /** When `ifname` is a bridge: the bridge port the MAC was learned on (from the bridge FDB). */
  port: z.string().optional(),
  /** A device one can talk to: has a MAC, resolved (not FAILED/INCOMPLETE/NOARP), not multicast. */
  usable: z.boolean(),
  /** Found by a re-dump (after loss, or another subscriber's dump), not by a kernel event. */
  resync: z.literal(true).optional(),
  /** Network namespace the source watched, when not the process's own. */
  netns: z.string().optional(),
});
export type NeighRecord = z.infer<typeof NeighRecord>;
/** A neighbour record's type: dump, new, update or delete. */
export type NeighRecordType = NeighRecord['type'];
/** One of the kernel's NUD state names. */
export type NeighStateName = z.infer<typeof NeighState>;
