/** Options of the conntrack source. */
import type { TransportFactory } from '../../netlink/transport.js';
import type { NoticeObserver } from '../notice.js';
import { bool, int, listOf, NETNS_NAME, oneOf, validateOptions } from '../options.js';

export type CtEventName = 'new' | 'update' | 'destroy';
export const CT_EVENT_NAMES: readonly CtEventName[] = ['new', 'update', 'destroy'];

export interface ConntrackConfig {
  /** Emit the current table first (records of type `dump`). */
  dump: boolean;
  /** Kernel events to follow; none (and no polling) means the source completes after the dump. */
  events: CtEventName[];
  family: 'ipv4' | 'ipv6' | 'all';
  zone?: number;
  mark?: number;
  markMask?: number;
  /** Watch this network namespace (/run/netns/NAME) instead of the process's own. */
  netns?: string;
  /** Dump every so often and emit `update` records carrying counter deltas (0 = off). */
  pollIntervalMs: number;
  /** Receive buffer of the event socket; larger buffers ride out longer stalls. */
  recvBufferBytes: number;
  /** How often the kernel's drop counter is read; loss triggers a resync dump. */
  lossCheckMs: number;
  /** Set nf_conntrack_events=1 so flows created while nobody listened still report DESTROY. */
  setEventsSysctl: boolean;
  /** Set nf_conntrack_acct=1 (and timestamps) so new flows carry counters. */
  setAccounting: boolean;
  /**
   * Reliable events (NETLINK_BROADCAST_SEND_ERROR with NETLINK_NO_ENOBUFS): when our receive buffer is
   * full the kernel keeps the event and retries instead of dropping it. DESTROYs are never lost; the
   * price is that undelivered entries stay in the table, and once it fills, new traffic is dropped.
   */
  reliable: boolean;
  /**
   * Read the event socket on a worker thread that drains it in batches (the default); false uses the
   * `netlink` package's one-callback-per-datagram reader on the main thread.
   */
  batchedReceive: boolean;
}

export type ConntrackOptionsInput = Partial<ConntrackConfig> & {
  /** Where loss, resync and warning notices go (also published on `flowgrab:notice`). */
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
};

const SPEC = {
  dump: bool,
  events: listOf(oneOf(...CT_EVENT_NAMES)),
  family: oneOf('ipv4', 'ipv6', 'all'),
  zone: int(0, 65535),
  mark: int(0, 0xffffffff),
  markMask: int(0, 0xffffffff),
  netns: NETNS_NAME,
  pollIntervalMs: int(0),
  recvBufferBytes: int(4096),
  lossCheckMs: int(10),
  setEventsSysctl: bool,
  setAccounting: bool,
  reliable: bool,
  batchedReceive: bool,
};

const DEFAULTS: ConntrackConfig = {
  dump: false,
  events: [],
  family: 'all',
  pollIntervalMs: 0,
  recvBufferBytes: 16 << 20,
  lossCheckMs: 200,
  setEventsSysctl: false,
  setAccounting: false,
  reliable: false,
  batchedReceive: true,
};

/** Validates options (every issue at once) and fills in the defaults. */
export function parseConntrackOptions(options: ConntrackOptionsInput): ConntrackConfig {
  const { notices: _n, transport: _t, ...rest } = options;
  return validateOptions<ConntrackConfig>('conntrack', rest, SPEC, DEFAULTS);
}
