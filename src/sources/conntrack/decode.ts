/**
 * The hot path: ctnetlink attributes straight to a ConntrackRecord, with no
 * intermediate CtEntry, no BigInt and no bounds-checked Buffer reads: the
 * attribute walk (scan.ts, shared with the JSON writer) gathers numbers and
 * offsets, and the record is made from them. The symmetric codec in
 * src/netlink/conntrack stays the reference: a property test holds this
 * decoder equal to toConntrackRecord(decodeCtEntry(…)).
 */
import { ctKind } from '../../netlink/conntrack/messages.js';
import { formatIPv4Cached } from '../../netlink/ip.js';
import type { NetlinkMessage } from '../../netlink/nlmsg.js';
import type { ConntrackEnd, ConntrackRecord, ConntrackRecordType } from './record.js';
import { HAS_MARK, HAS_TIMEOUT, protoName, type ScannedEnd, ScannedEntry, statusList } from './scan.js';

/** Where every decode gathers its entry (decoding is synchronous: one at a time). */
const scan = new ScannedEntry();

/** An address of a scanned end: IPv4 from the message's bytes, others already text, '' when absent. */
const address = (b: Buffer, at: number, text: string | null): string =>
  text !== null ? text : at < 0 ? '' : formatIPv4Cached(b, at);

/** A scanned end as a record's: ports only when present (none with ICMP), counters when counted. */
function recordEnd(b: Buffer, e: ScannedEnd): ConntrackEnd {
  const out: ConntrackEnd = { src: address(b, e.src, e.srcText), dst: address(b, e.dst, e.dstText) };
  if (e.icmp) out.icmp = { type: e.icmpType, code: e.icmpCode, id: e.icmpId };
  if (e.sport >= 0) out.sport = e.sport;
  if (e.dport >= 0) out.dport = e.dport;
  if (e.counted) {
    out.packets = e.packets;
    out.bytes = e.bytes;
    if (e.saturated) out.saturated = true;
  }
  if (e.zone >= 0) out.zone = e.zone;
  return out;
}

/** The record of the entry `m` has read from `b`. */
function record(
  m: ScannedEntry,
  b: Buffer,
  family: number,
  type: ConntrackRecordType,
  now: number,
  netns?: string,
): ConntrackRecord {
  const r: ConntrackRecord = {
    type,
    id: m.id,
    family: family === 10 ? 'ipv6' : 'ipv4',
    proto: protoName(m.protonum),
    protonum: m.protonum,
    orig: recordEnd(b, m.orig),
    reply: recordEnd(b, m.reply),
    status: statusList(m.status),
    ts: m.tsEvent >= 0 ? m.tsEvent : now,
  };
  if (m.state !== undefined) r.state = m.state;
  if (m.has & HAS_TIMEOUT) r.timeout = m.timeout;
  if (m.has & HAS_MARK) r.mark = m.mark;
  if (m.zone >= 0) r.zone = m.zone;
  if (m.tsStart >= 0) r.start = m.tsStart;
  if (m.tsStop >= 0) r.stop = m.tsStop;
  if (m.helper !== undefined) r.helper = m.helper;
  if (m.labels !== undefined) r.labels = m.labels;
  if (netns !== undefined) r.netns = netns;
  return r;
}

/**
 * Decodes the attributes after nfgenmsg (`start`…`end`) into a record.
 * Throws DecodeError on malformed input, never anything else.
 */
export function decodeConntrackRecord(
  b: Buffer,
  start: number,
  end: number,
  family: number,
  type: ConntrackRecordType,
  now: number,
  netns?: string,
): ConntrackRecord {
  scan.read(b, start, end);
  return record(scan, b, family, type, now, netns);
}

/** A whole ctnetlink message (nfgenmsg + attributes) to a record. */
export function conntrackRecordFromMessage(m: NetlinkMessage, now: number, netns?: string): ConntrackRecord {
  return conntrackRecordAt(m.payload, 0, m.payload.length, m.type, m.flags, now, netns);
}

/**
 * A ctnetlink message read in place: its payload (nfgenmsg + attributes) is
 * `b[start, end)`, its header's type and flags given. A DecodeError counts
 * its offset from the payload's start, as conntrackRecordFromMessage's does.
 */
export function conntrackRecordAt(
  b: Buffer,
  start: number,
  end: number,
  msgType: number,
  flags: number,
  now: number,
  netns?: string,
): ConntrackRecord {
  const type = ctKind(msgType, flags);
  scan.readPayload(b, start, end);
  return record(scan, b, b[start], type, now, netns);
}
