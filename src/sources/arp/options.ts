/** Options of the arp (neighbour table) source: one zod schema gives the type, the defaults and the graph node's params. */
import { z } from 'zod';
import type { TransportFactory } from '../../netlink/transport.js';
import type { NoticeObserver } from '../notice.js';
import type { ReadyObserver } from '../ready.js';
import { bool, int, netnsName, oneOf, parseOptions } from '../schema.js';

export const ArpOptions = z.strictObject({
  /** Emit the current table first (records of type `dump`). */
  dump: bool().default(true),
  /** Follow RTM_NEWNEIGH/RTM_DELNEIGH: `new`, `update`, `delete` records (after the dump unless `dump: false`). */
  events: bool().default(false),
  family: oneOf(['ipv4', 'ipv6', 'all']).default('all'),
  /** Watch this network namespace (/run/netns/NAME) instead of the process's own. */
  netns: netnsName().optional(),
  /** Also report FAILED, INCOMPLETE, NOARP and multicast entries (with `usable: false`). */
  includeUnusable: bool().default(false),
  /** Receive buffer of the event socket. */
  recvBufferBytes: int(4096).default(4 << 20),
  /** How often the kernel's drop counter is read; loss triggers a resync dump. */
  lossCheckMs: int(10).default(200),
  /**
   * Read the event socket on a worker thread that drains it in batches (many datagrams per wake-up of the
   * main thread, so the kernel queue drains while the main thread is busy); false uses the `netlink`
   * package's one-callback-per-datagram reader on the main thread.
   */
  batchedReceive: bool().default(true),
});

export type ArpConfig = z.output<typeof ArpOptions>;

/** Options of arp(): dump, events, family, all entries, namespace; plus notices and a transport (tests). */
export type ArpOptionsInput = z.input<typeof ArpOptions> & {
  /** Where loss, resync and warning notices go (also published on `flowgrab:notice`). */
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
  /** Told on subscribe what resolves once the subscription captures (see ReadyObserver). */
  ready?: ReadyObserver;
};

/** Validates options (every issue at once) and fills in the defaults. */
export function parseArpOptions(options: ArpOptionsInput): ArpConfig {
  return parseOptions('arp', ArpOptions, options);
}
