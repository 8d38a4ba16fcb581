/**
 * ConntrackRecord: the zod schema is the single source of the type
 * (docs/architecture.md#records). `toConntrackRecord` maps a decoded kernel entry to it.
 */
import { z } from 'zod';
import type { CtCounters, CtEntry } from '../../netlink/conntrack/entry.js';
import { PROTO_NAMES, TCP_CONNTRACK_STATES } from '../../netlink/conntrack/enums.js';
import type { CtTuple } from '../../netlink/conntrack/tuple.js';
import { AF_INET6 } from '../../netlink/nfnetlink.js';
import { statusNames } from './status.js';

/** Packet and byte counters of one direction. */
export const Counters = z.object({ packets: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() });
export type Counters = z.infer<typeof Counters>;

/** One direction of a conntrack entry: addresses, ports or ICMP ids, counters. */
export const ConntrackEnd = z.object({
  src: z.string(),
  dst: z.string(),
  sport: z.number().int().optional(),
  dport: z.number().int().optional(),
  icmp: z.object({ type: z.number().int(), code: z.number().int(), id: z.number().int() }).optional(),
  /**
   * Absent when the kernel gave no counters (accounting off, or a NEW/UPDATE event).
   * The kernel's u64 counters are exact up to 2^53 - 1 (Number.MAX_SAFE_INTEGER);
   * above that they saturate at it and `saturated` is set, never silently rounded.
   */
  packets: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  /** Set when packets or bytes passed 2^53 - 1 and were saturated there. */
  saturated: z.literal(true).optional(),
  /** This direction's conntrack zone (CTA_TUPLE_ZONE: `--orig-zone`/`--reply-zone`), when it has one. */
  zone: z.number().int().optional(),
});
export type ConntrackEnd = z.infer<typeof ConntrackEnd>;

/** A conntrack entry or event (zod schema and type): tuples, state, status, counters, deltas. */
export const ConntrackRecord = z.object({
  type: z.enum(['dump', 'new', 'update', 'destroy']),
  /** The kernel's entry id: stable for the entry's life. */
  id: z.number().int(),
  family: z.enum(['ipv4', 'ipv6']),
  proto: z.string(),
  protonum: z.number().int(),
  orig: ConntrackEnd,
  reply: ConntrackEnd,
  /** TCP state name (ESTABLISHED, TIME_WAIT …). */
  state: z.string().optional(),
  /** IPS_* status flags by name (a shared, frozen list: read-only). */
  status: z.array(z.string()).readonly(),
  mark: z.number().int().optional(),
  zone: z.number().int().optional(),
  /** Seconds until the entry expires. */
  timeout: z.number().int().optional(),
  /** ms since the epoch, when nf_conntrack_timestamp was on as the flow started. */
  start: z.number().optional(),
  stop: z.number().optional(),
  helper: z.string().optional(),
  labels: z.string().optional(),
  /** Counter growth since the previous record of this entry (delta polling, DESTROY). */
  delta: z.object({ orig: Counters, reply: Counters }).optional(),
  /** Emitted by a resynchronisation after loss; a `destroy` with resync was inferred, not reported. */
  resync: z.literal(true).optional(),
  /** Network namespace the source watched, when not the process's own. */
  netns: z.string().optional(),
  /** ms since the epoch: the kernel's event timestamp when present, else when flowgrab received it. */
  ts: z.number(),
});
export type ConntrackRecord = z.infer<typeof ConntrackRecord>;
/** A conntrack record's type: dump, new, update or destroy. */
export type ConntrackRecordType = ConntrackRecord['type'];

const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function end(t: CtTuple | undefined, c: CtCounters | undefined): ConntrackEnd {
  const e: ConntrackEnd = { src: t?.src ?? '', dst: t?.dst ?? '' };
  if (t?.icmp) e.icmp = t.icmp;
  else {
    if (t?.sport !== undefined) e.sport = t.sport;
    if (t?.dport !== undefined) e.dport = t.dport;
  }
  if (c) {
    e.packets = c.packets > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(c.packets);
    e.bytes = c.bytes > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(c.bytes);
    if (c.packets > MAX_SAFE || c.bytes > MAX_SAFE) e.saturated = true;
  }
  if (t?.zone !== undefined) e.zone = t.zone;
  return e;
}

export function toConntrackRecord(type: ConntrackRecordType, e: CtEntry, now: number, netns?: string): ConntrackRecord {
  const protonum = e.orig?.protonum ?? 0;
  const r: ConntrackRecord = {
    type,
    id: e.id ?? 0,
    family: e.family === AF_INET6 ? 'ipv6' : 'ipv4',
    proto: PROTO_NAMES[protonum] ?? String(protonum),
    protonum,
    orig: end(e.orig, e.countersOrig),
    reply: end(e.reply, e.countersReply),
    status: e.status === undefined ? [] : statusNames(e.status),
    ts: e.timestampEvent === undefined ? now : nsToMs(e.timestampEvent),
  };
  const state = e.tcp?.state;
  if (state !== undefined) r.state = TCP_CONNTRACK_STATES[state] ?? String(state);
  if (e.mark !== undefined) r.mark = e.mark;
  if (e.zone !== undefined) r.zone = e.zone;
  if (e.timeout !== undefined) r.timeout = e.timeout;
  if (e.timestampStart !== undefined) r.start = nsToMs(e.timestampStart);
  if (e.timestampStop !== undefined) r.stop = nsToMs(e.timestampStop);
  if (e.helper !== undefined) r.helper = e.helper;
  if (e.labels) r.labels = e.labels.toString('hex');
  if (netns !== undefined) r.netns = netns;
  return r;
}
