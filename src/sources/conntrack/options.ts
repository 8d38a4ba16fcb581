/** Options of the conntrack source: one zod schema gives the type, the defaults and the graph node's params. */
import { z } from 'zod';
import type { TransportFactory } from '../../netlink/transport.js';
import { MAX_TIMER_MS } from '../../util/timer.js';
import type { NoticeObserver } from '../notice.js';
import type { ReadyObserver } from '../ready.js';
import { bool, int, listOf, netnsName, oneOf, parseOptions } from '../schema.js';
import { CT_EVENT_NAMES, CONNTRACK_DEFAULTS as D, defaultEvents } from './config.js';

export { CT_EVENT_NAMES };
/** A conntrack event to follow: new, update or destroy. */
export type CtEventName = (typeof CT_EVENT_NAMES)[number];
export const CtEvent = oneOf(CT_EVENT_NAMES);

export const ConntrackOptions = z.strictObject({
  /** Emit the current table first (records of type `dump`). */
  dump: bool().default(D.dump),
  /**
   * Kernel events to follow. Default: all three, unless dumping or polling (then none). No events
   * and no polling means the source completes after the dump.
   */
  events: listOf(CtEvent).optional(),
  family: oneOf(['ipv4', 'ipv6', 'all']).default(D.family),
  zone: int(0, 65535).optional(),
  mark: int(0, 0xffffffff).optional(),
  markMask: int(0, 0xffffffff).optional(),
  /** Watch this network namespace (/run/netns/NAME) instead of the process's own. */
  netns: netnsName().optional(),
  /** Dump every so often and emit `update` records carrying counter deltas (0 = off). */
  pollIntervalMs: int(0, MAX_TIMER_MS).default(D.pollIntervalMs),
  /** Receive buffer of the event socket; larger buffers ride out longer stalls. */
  recvBufferBytes: int(4096).default(D.recvBufferBytes),
  /** How often the kernel's drop counter is read while events arrive (a quiet socket wakes nothing); loss triggers a resync dump. */
  lossCheckMs: int(10).default(D.lossCheckMs),
  /** Set nf_conntrack_events=1 so flows created while nobody listened still report DESTROY. */
  setEventsSysctl: bool().default(D.setEventsSysctl),
  /** Set nf_conntrack_acct=1 (and timestamps) so new flows carry counters. */
  setAccounting: bool().default(D.setAccounting),
  /**
   * Reliable events (NETLINK_BROADCAST_SEND_ERROR with NETLINK_NO_ENOBUFS): when our receive buffer is
   * full the kernel keeps the event and retries instead of dropping it. DESTROYs are never lost; the
   * price is that undelivered entries stay in the table, and once it fills, new traffic is dropped.
   */
  reliable: bool().default(D.reliable),
  /**
   * Read the event socket on a worker thread that drains it in batches (many datagrams per wake-up of the
   * main thread, so the kernel queue drains while the main thread is busy); false uses the `netlink`
   * package's one-callback-per-datagram reader on the main thread.
   */
  batchedReceive: bool().default(D.batchedReceive),
});

export type ConntrackConfig = Omit<z.output<typeof ConntrackOptions>, 'events'> & { events: CtEventName[] };

/** Options of conntrack(): dump, events, polling, filters (family, zone, mark), namespace, sysctls; plus notices and a transport (tests). */
export type ConntrackOptionsInput = z.input<typeof ConntrackOptions> & {
  /** Where loss, resync and warning notices go (also published on `flowgrab:notice`). */
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
  /** Told on subscribe what resolves once the subscription captures (see ReadyObserver). */
  ready?: ReadyObserver;
};

/** Validates options (every issue at once) and fills in the defaults. */
export function parseConntrackOptions(options: ConntrackOptionsInput): ConntrackConfig {
  const c = parseOptions('conntrack', ConntrackOptions, options);
  return { ...c, events: c.events ?? defaultEvents(c.dump, c.pollIntervalMs) };
}
