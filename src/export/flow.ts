/**
 * ExportFlow: what every flow exporter writes. One record covers both
 * directions of a conntrack entry over a time span: the originating
 * direction (`src`→`dst`, the ORIG tuple) and the reply direction (the REPLY
 * tuple `rsrc`→`rdst`, which differs from the reverse of ORIG under NAT).
 * Counters are deltas: what the flow did since its previous record.
 */
import { z } from 'zod';
import type { ConntrackRecord } from '../sources/conntrack/record.js';

/** Why a flow record was exported: idle, active (timeout), end (DESTROY), forced (shutdown), resources. */
export const FlowEndReason = z.enum(['idle', 'active', 'end', 'forced', 'resources']);
/** Why a flow record was exported (see the `FlowEndReason` schema). */
export type FlowEndReason = z.infer<typeof FlowEndReason>;

const port = z.number().int().min(0).max(65535);
const count = z.number().int().nonnegative();

/** A flow as the exporters send it: addresses, ports, counters both ways, start and end (ms), TCP flags, end reason. */
export const ExportFlow = z.object({
  type: z.literal('flow'),
  family: z.enum(['ipv4', 'ipv6']),
  protonum: z.number().int().min(0).max(255),
  proto: z.string(),
  src: z.string(),
  dst: z.string(),
  /** Ports; 0 for protocols without them. */
  sport: port,
  dport: port,
  /** ICMP / ICMPv6 type and code of each direction. */
  icmp: z.object({ type: z.number().int(), code: z.number().int() }).optional(),
  ricmp: z.object({ type: z.number().int(), code: z.number().int() }).optional(),
  packets: count,
  bytes: count,
  /** The reply tuple, as the kernel saw the answers travel. */
  rsrc: z.string(),
  rdst: z.string(),
  rsport: port,
  rdport: port,
  rpackets: count,
  rbytes: count,
  /** ms since the epoch: the span this record covers. */
  start: z.number(),
  end: z.number(),
  /** TCP flags seen (cumulative, derived from conntrack's TCP states); 0 when unknown or not TCP. */
  tcpFlags: z.number().int().min(0).max(0xff),
  reason: FlowEndReason,
  /** The conntrack entry id, when the flow came from conntrack. */
  id: z.number().int().optional(),
  netns: z.string().optional(),
});
/** A flow record as exported (see the `ExportFlow` schema). */
export type ExportFlow = z.infer<typeof ExportFlow>;

/** Cheap shape test for the hot path (the sinks); `ExportFlow.parse` gives the full diagnosis. */
export function isExportFlow(r: unknown): r is ExportFlow {
  const f = r as ExportFlow;
  return (
    typeof f === 'object' &&
    f !== null &&
    f.type === 'flow' &&
    (f.family === 'ipv4' || f.family === 'ipv6') &&
    typeof f.src === 'string' &&
    typeof f.rsrc === 'string' &&
    typeof f.packets === 'number'
  );
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/**
 * The TCP flags a connection must have carried to reach a conntrack state.
 * conntrack keeps no flag history, so this is what is known for sure.
 */
export function tcpFlagsOfState(state: string | undefined): number {
  switch (state) {
    case 'SYN_SENT':
    case 'SYN_SENT2':
      return TCP_SYN;
    case 'SYN_RECV':
    case 'ESTABLISHED':
      return TCP_SYN | TCP_ACK;
    case 'FIN_WAIT':
    case 'CLOSE_WAIT':
    case 'LAST_ACK':
    case 'TIME_WAIT':
      return TCP_SYN | TCP_ACK | TCP_FIN;
    case 'CLOSE':
      // CLOSE is reached by a RST (TIME_WAIT expiry goes through TIME_WAIT first).
      return TCP_ACK | TCP_RST;
    default:
      return 0;
  }
}

/** ICMP and ICMPv6: no ports; type and code instead. */
export const isIcmp = (protonum: number): boolean => protonum === 1 || protonum === 58;

export interface FlowSpan {
  packets: number;
  bytes: number;
  rpackets: number;
  rbytes: number;
  start: number;
  end: number;
  reason: FlowEndReason;
  tcpFlags?: number;
}

/** The flow a conntrack record describes, with the counters and span given. */
export function flowFromConntrack(r: ConntrackRecord, span: FlowSpan): ExportFlow {
  const icmp = isIcmp(r.protonum);
  const f: ExportFlow = {
    type: 'flow',
    family: r.family,
    protonum: r.protonum,
    proto: r.proto,
    src: r.orig.src,
    dst: r.orig.dst,
    sport: icmp ? 0 : (r.orig.sport ?? 0),
    dport: icmp ? 0 : (r.orig.dport ?? 0),
    packets: span.packets,
    bytes: span.bytes,
    rsrc: r.reply.src,
    rdst: r.reply.dst,
    rsport: icmp ? 0 : (r.reply.sport ?? 0),
    rdport: icmp ? 0 : (r.reply.dport ?? 0),
    rpackets: span.rpackets,
    rbytes: span.rbytes,
    start: span.start,
    end: span.end,
    tcpFlags: span.tcpFlags ?? (r.protonum === 6 ? tcpFlagsOfState(r.state) : 0),
    reason: span.reason,
    id: r.id,
  };
  if (r.orig.icmp) f.icmp = { type: r.orig.icmp.type, code: r.orig.icmp.code };
  if (r.reply.icmp) f.ricmp = { type: r.reply.icmp.type, code: r.reply.icmp.code };
  if (r.netns !== undefined) f.netns = r.netns;
  return f;
}

/**
 * A conntrack record from any graph as one flow record, without a tracker:
 * its `delta` when it has one, else its absolute counters. Records without
 * counters (NEW and UPDATE events) give undefined.
 */
export function conntrackToFlow(r: ConntrackRecord): ExportFlow | undefined {
  const d = r.delta;
  const o = d
    ? d.orig
    : r.orig.packets === undefined
      ? undefined
      : { packets: r.orig.packets, bytes: r.orig.bytes ?? 0 };
  if (!o) return undefined;
  const rp = d ? d.reply : { packets: r.reply.packets ?? 0, bytes: r.reply.bytes ?? 0 };
  const end = r.type === 'destroy' ? (r.stop ?? r.ts) : r.ts;
  return flowFromConntrack(r, {
    packets: o.packets,
    bytes: o.bytes,
    rpackets: rp.packets,
    rbytes: rp.bytes,
    start: r.start ?? end,
    end,
    reason: r.type === 'destroy' ? 'end' : 'active',
  });
}

/** Anything a flow exporter accepts: an ExportFlow, or a conntrack record with counters. */
export function asExportFlow(r: unknown): ExportFlow | undefined {
  if (isExportFlow(r)) return r;
  const c = r as ConntrackRecord;
  if (
    typeof c === 'object' &&
    c !== null &&
    typeof c.type === 'string' &&
    typeof c.orig === 'object' &&
    typeof c.reply === 'object' &&
    (c.family === 'ipv4' || c.family === 'ipv6')
  )
    return conntrackToFlow(c);
  return undefined;
}
