/**
 * Structural check of a DNS message before dns-packet sees it. dns-packet
 * trusts the header counts (it allocates four arrays of up to 65 535 slots),
 * lets a type decoder read past its rdata and past the payload, and keeps
 * going with a NaN offset. This walker reads only what the payload holds and
 * costs O(payload): it rejects counts the payload cannot hold before any
 * record is read, bounds names (labels, pointer hops, length), and checks
 * every record's rdata against its type where the type has a fixed layout.
 */
import { DecodeError } from '../../errors.js';

/**
 * Stable reason codes in `DnsRecord.error` (details in `errorMessage`):
 * - `truncated`: the payload ends inside the header, a question or a record.
 * - `bad-count`: header counts that the payload cannot hold.
 * - `bad-name`: a label or compression pointer that is not allowed (forward or
 *   self pointer, reserved label type, name over 255 bytes, too many hops).
 * - `bad-rdata`: rdata whose length does not fit its type (A ≠ 4, AAAA ≠ 16,
 *   names or strings not filling it exactly), or a record the decoder read
 *   differently from its declared length.
 * - `overrun`: the decoder consumed more bytes than the payload, or a non-finite count.
 * - `not-dns`: any other reason the bytes are not a DNS message.
 * - `fragment`: the packet was an IP fragment; DNS needs the whole datagram.
 */
export const DNS_ERROR_CODES = [
  'truncated',
  'bad-count',
  'bad-name',
  'bad-rdata',
  'overrun',
  'not-dns',
  'fragment',
] as const;
export type DnsErrorCode = (typeof DNS_ERROR_CODES)[number];

export class DnsWireError extends DecodeError {
  readonly reason: DnsErrorCode;
  constructor(reason: DnsErrorCode, message: string, offset: number) {
    // Bad packets are data, not bugs: a stack trace would cost more than decoding a good packet.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${reason}: ${message}`, offset, 'dns');
    Error.stackTraceLimit = limit;
    this.reason = reason;
  }
}

export const DNS_HEADER = 12;
/** The smallest question: root name (1) + type + class. */
const MIN_QUESTION = 5;
/** The smallest record: root name (1) + type, class, ttl, rdlength. */
const MIN_RR = 11;
/** A name's hops through compression pointers; a real name needs one per label at most. */
const MAX_HOPS = 127;
/**
 * Labels and pointer hops that all names of a message may take together:
 * one per payload byte, plus slack. Real messages stay well below (a
 * response of A records for one compressed 3-label name takes ~0.3 per
 * byte, an ip6.arpa PTR answer ~0.6); a message whose every record points
 * at a 127-label name takes 8, and would cost dns-packet 40× a normal packet
 * to decode (bench decode-worst).
 */
const stepBudget = (len: number) => len + 128;

export interface WalkedMessage {
  /** [start, end) of every question, then of every record (answers, authorities, additionals), flat. */
  bounds: number[];
  /** Each record's type and where its rdata starts (answers, authorities, additionals, in order), flat. */
  rdata: number[];
  /** Offset just past the last record. */
  end: number;
}

/** Name work left for the message being walked (see stepBudget); walkDns resets it. */
let steps = 0;

/** Walks a name at `o`; returns the offset just after it in the message (not after its pointer target). */
function walkName(b: Buffer, o: number): number {
  const limit = b.length;
  let p = o;
  let after = -1;
  let floor = o; // pointers must go strictly backward, as dns-packet requires
  let nameLen = 0;
  for (let hops = 0; ; ) {
    if (p >= limit) throw new DnsWireError('truncated', 'name runs past its end', p);
    if (--steps < 0) throw new DnsWireError('bad-name', 'names take more work than the payload justifies', p);
    const len = b[p];
    if (len === 0) return after < 0 ? p + 1 : after;
    const kind = len & 0xc0;
    if (kind === 0) {
      nameLen += len + 1;
      if (nameLen > 254) throw new DnsWireError('bad-name', 'name longer than 255 bytes', p);
      if (p + 1 + len > limit) throw new DnsWireError('truncated', 'label runs past its end', p);
      p += 1 + len;
    } else if (kind === 0xc0) {
      if (p + 2 > limit) throw new DnsWireError('truncated', 'pointer runs past its end', p);
      const target = ((len & 0x3f) << 8) | b[p + 1];
      if (target >= floor) throw new DnsWireError('bad-name', `pointer to ${target} does not go backward`, p);
      if (++hops > MAX_HOPS) throw new DnsWireError('bad-name', 'too many compression pointers', p);
      if (after < 0) after = p + 2;
      floor = target;
      p = target;
    } else throw new DnsWireError('bad-name', `label type 0x${kind.toString(16)}`, p);
  }
}

/** A name that must end exactly at `end` (within its rdata). */
function nameFills(b: Buffer, o: number, end: number): void {
  if (walkNameIn(b, o, end) !== end) throw new DnsWireError('bad-rdata', 'name does not fill its rdata', o);
}
/** A name starting inside [o, end), whose pointers may reach back anywhere before it in the message. */
function walkNameIn(b: Buffer, o: number, end: number): number {
  const after = walkName(b, o);
  if (after > end) throw new DnsWireError('bad-rdata', 'name overruns its rdata', o);
  return after;
}

/** <len><bytes> strings (TXT, HINFO) that exactly fill [o, end); returns how many. */
function stringsFill(b: Buffer, o: number, end: number): number {
  let p = o;
  let n = 0;
  for (; p < end; n++) p += 1 + b[p];
  if (p !== end) throw new DnsWireError('bad-rdata', 'character-strings do not fill their rdata', o);
  return n;
}
function optionsFill(b: Buffer, o: number, end: number): void {
  let p = o;
  while (p + 4 <= end) p += 4 + b.readUInt16BE(p + 2);
  if (p !== end) throw new DnsWireError('bad-rdata', 'EDNS options do not fill their rdata', o);
}

function checkRdata(b: Buffer, type: number, o: number, end: number): void {
  const len = end - o;
  const need = (n: number) => {
    if (len !== n) throw new DnsWireError('bad-rdata', `type ${type} rdata of ${len} bytes, not ${n}`, o);
  };
  const atLeast = (n: number) => {
    if (len < n) throw new DnsWireError('bad-rdata', `type ${type} rdata of ${len} bytes, under ${n}`, o);
  };
  switch (type) {
    case 1: // A
      need(4);
      return;
    case 28: // AAAA
      need(16);
      return;
    case 2: // NS
    case 5: // CNAME
    case 12: // PTR
    case 39: // DNAME
      atLeast(1);
      nameFills(b, o, end);
      return;
    case 15: // MX
      atLeast(3);
      nameFills(b, o + 2, end);
      return;
    case 33: // SRV
      atLeast(7);
      nameFills(b, o + 6, end);
      return;
    case 6: {
      // SOA: mname, rname, then five u32
      atLeast(22);
      const r = walkNameIn(b, o, end);
      const s = walkNameIn(b, r, end);
      need(s - o + 20);
      return;
    }
    case 16: // TXT
      stringsFill(b, o, end);
      return;
    case 13: // HINFO: cpu, os
      if (stringsFill(b, o, end) !== 2) throw new DnsWireError('bad-rdata', 'HINFO needs two strings', o);
      return;
    case 41: // OPT
      optionsFill(b, o, end);
      return;
  }
}

/**
 * Validates the whole message. Throws DnsWireError; costs O(payload) and
 * allocates one small array (bounded by what the payload can hold).
 */
export function walkDns(b: Buffer): WalkedMessage {
  if (b.length < DNS_HEADER) throw new DnsWireError('truncated', `${b.length} bytes, under a DNS header`, 0);
  const qd = b.readUInt16BE(4);
  const rr = b.readUInt16BE(6) + b.readUInt16BE(8) + b.readUInt16BE(10);
  const least = DNS_HEADER + qd * MIN_QUESTION + rr * MIN_RR;
  if (least > b.length) {
    throw new DnsWireError('bad-count', `${qd} questions and ${rr} records need ${least} bytes, have ${b.length}`, 4);
  }
  steps = stepBudget(b.length);
  let o = DNS_HEADER;
  const bounds: number[] = new Array(2 * (qd + rr));
  let k = 0;
  const rdataAt: number[] = new Array(2 * rr);
  for (let i = 0; i < qd; i++) {
    bounds[k++] = o;
    o = walkName(b, o);
    if (o + 4 > b.length) throw new DnsWireError('truncated', 'question runs past the payload', o);
    o += 4;
    bounds[k++] = o;
  }
  for (let i = 0; i < rr; i++) {
    bounds[k++] = o;
    o = walkName(b, o);
    if (o + 10 > b.length) throw new DnsWireError('truncated', 'record header runs past the payload', o);
    const type = b.readUInt16BE(o);
    const rdlen = b.readUInt16BE(o + 8);
    const rdata = o + 10;
    if (rdata + rdlen > b.length)
      throw new DnsWireError('truncated', `rdata of ${rdlen} bytes runs past the payload`, o);
    checkRdata(b, type, rdata, rdata + rdlen);
    rdataAt[2 * i] = type;
    rdataAt[2 * i + 1] = rdata;
    o = rdata + rdlen;
    bounds[k++] = o;
  }
  return { bounds, rdata: rdataAt, end: o };
}
