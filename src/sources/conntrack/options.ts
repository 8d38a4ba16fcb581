/** Options of the conntrack source, validated by zod. */
import { z } from 'zod';
import type { TransportFactory } from '../../netlink/transport.js';
import type { NoticeObserver } from '../notice.js';

export const CtEventName = z.enum(['new', 'update', 'destroy']);
export type CtEventName = z.infer<typeof CtEventName>;

export const ConntrackOptions = z
  .object({
    /** Emit the current table first (records of type `dump`). */
    dump: z.boolean().default(false),
    /** Kernel events to follow; none means the source completes after the dump. */
    events: z.array(CtEventName).default([]),
    family: z.enum(['ipv4', 'ipv6', 'all']).default('all'),
    zone: z.number().int().min(0).max(65535).optional(),
    mark: z.number().int().min(0).max(0xffffffff).optional(),
    markMask: z.number().int().min(0).max(0xffffffff).optional(),
    /** Watch this network namespace (/run/netns/NAME) instead of the process's own. */
    netns: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
    /** Dump every so often and emit `update` records carrying counter deltas (0 = off). */
    pollIntervalMs: z.number().int().min(0).default(0),
    /** Receive buffer of the event socket; larger buffers ride out longer stalls. */
    recvBufferBytes: z.number().int().min(4096).default(16 << 20),
    /** How often the kernel's drop counter is read; loss triggers a resync dump. */
    lossCheckMs: z.number().int().min(10).default(200),
    /** Set nf_conntrack_events=1 so flows created while nobody listened still report DESTROY. */
    setEventsSysctl: z.boolean().default(false),
    /** Set nf_conntrack_acct=1 (and timestamps) so new flows carry counters. */
    setAccounting: z.boolean().default(false),
  })
  .strict();

export type ConntrackOptionsInput = z.input<typeof ConntrackOptions> & {
  /** Where loss, resync and warning notices go (also published on `flowgrab:notice`). */
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
};
export type ConntrackConfig = z.output<typeof ConntrackOptions>;

/** The part of the config that decides which shared socket serves a subscriber. */
export function feedKey(c: ConntrackConfig): string {
  return JSON.stringify([
    c.netns ?? '',
    c.family,
    [...c.events].sort(),
    c.zone ?? null,
    c.mark ?? null,
    c.markMask ?? null,
    c.pollIntervalMs,
  ]);
}
