/** Options of the arp (neighbour table) source. */
import type { TransportFactory } from '../../netlink/transport.js';
import type { NoticeObserver } from '../notice.js';
import { bool, int, NETNS_NAME, oneOf, validateOptions } from '../options.js';

export interface ArpConfig {
  /** Emit the current table first (records of type `dump`). Default true. */
  dump: boolean;
  /** Follow RTM_NEWNEIGH/RTM_DELNEIGH: `new`, `update`, `delete` records. Default false. */
  events: boolean;
  family: 'ipv4' | 'ipv6' | 'all';
  /** Watch this network namespace (/run/netns/NAME) instead of the process's own. */
  netns?: string;
  /** Also report FAILED, INCOMPLETE, NOARP and multicast entries (with `usable: false`). */
  includeUnusable: boolean;
  /** Receive buffer of the event socket. */
  recvBufferBytes: number;
  /** How often the kernel's drop counter is read; loss triggers a resync dump. */
  lossCheckMs: number;
}

export type ArpOptionsInput = Partial<ArpConfig> & {
  /** Where loss, resync and warning notices go (also published on `flowgrab:notice`). */
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
};

const SPEC = {
  dump: bool,
  events: bool,
  family: oneOf('ipv4', 'ipv6', 'all'),
  netns: NETNS_NAME,
  includeUnusable: bool,
  recvBufferBytes: int(4096),
  lossCheckMs: int(10),
};

const DEFAULTS: ArpConfig = {
  dump: true,
  events: false,
  family: 'all',
  includeUnusable: false,
  recvBufferBytes: 4 << 20,
  lossCheckMs: 200,
};

/** Validates options (every issue at once) and fills in the defaults. */
export function parseArpOptions(options: ArpOptionsInput): ArpConfig {
  const { notices: _n, transport: _t, ...rest } = options;
  return validateOptions<ArpConfig>('arp', rest, SPEC, DEFAULTS);
}
