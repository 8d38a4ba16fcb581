/**
 * A DNS message (decoded by dns-packet) to the DNS part of a DnsRecord:
 * question, rcode, answers, and `resolved` — every final address of the
 * asked name with the CNAME chain that led there.
 */
import { createRequire } from 'node:module';
import * as dnsPacket from 'dns-packet';
import { type NameCodec, withNameCache } from './names.js';
import type { DnsAnswer, DnsResolved } from './record.js';
import { DNS_HEADER, type DnsErrorCode, DnsWireError, walkDns } from './wire.js';

export interface DnsFields {
  kind: 'query' | 'response';
  id: number;
  qname: string;
  qtype: string;
  rcode: string;
  answers: DnsAnswer[];
  resolved: DnsResolved[];
}

const MAX_CHAIN = 16;
/**
 * Addresses `resolved` lists at most (every one is in `answers` too). Each carries its chain: a 62 KB response
 * of 16 CNAMEs of 253 characters and 3 600 A records made 16.9 MB of JSON, 270 times the packet.
 */
export const MAX_RESOLVED = 256;

/**
 * Record types whose rdata is kept as it came, in hex, not decoded by dns-packet: nothing here reads them, and
 * their decoders cost or print far more than their bytes. NSEC and NSEC3 type bitmaps became up to eight type
 * names per byte (80-99 times the packet as JSON, 1.6 ms per KiB to decode); RRSIG, RP, NSEC and NAPTR hold
 * names the walker does not count against its budget (wire.ts), RP's through dns-packet's uncached decoder.
 */
export const OPAQUE_TYPES = new Set([
  10, // NULL
  17, // RP
  35, // NAPTR
  43, // DS
  44, // SSHFP
  46, // RRSIG
  47, // NSEC
  48, // DNSKEY
  50, // NSEC3
  51, // NSEC3PARAM
  52, // TLSA
]);

function dataText(a: dnsPacket.Answer): string {
  const d = (a as { data?: unknown }).data;
  if (typeof d === 'string') return d;
  if (Buffer.isBuffer(d)) return d.toString('hex');
  if (Array.isArray(d)) return d.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x))).join(' ');
  if (a.type === 'MX' && d && typeof d === 'object') {
    const mx = d as { preference: number; exchange: string };
    return `${mx.preference} ${mx.exchange}`;
  }
  return d === undefined ? '' : JSON.stringify(d);
}

/** Follows CNAMEs from `qname` to addresses; loops and over-long chains stop at MAX_CHAIN. */
export function resolveChains(qname: string, answers: DnsAnswer[]): DnsResolved[] {
  const lower = (s: string) => s.toLowerCase();
  const cnames = new Map<string, DnsAnswer>();
  const addrs = new Map<string, DnsAnswer[]>();
  for (const a of answers) {
    if (a.type === 'CNAME') cnames.set(lower(a.name), a);
    else if (a.type === 'A' || a.type === 'AAAA') {
      const k = lower(a.name);
      const list = addrs.get(k);
      if (list) list.push(a);
      else addrs.set(k, [a]);
    }
  }
  const out: DnsResolved[] = [];
  const via: string[] = [];
  let name = lower(qname);
  let ttl = Number.POSITIVE_INFINITY;
  for (let hop = 0; hop <= MAX_CHAIN && out.length < MAX_RESOLVED; hop++) {
    const at = addrs.get(name) ?? [];
    // One copy of the chain per hop, shared by its addresses.
    const chain = at.length ? [...via] : via;
    for (let i = 0; i < at.length && out.length < MAX_RESOLVED; i++)
      out.push({ name: qname, ip: at[i].data, ttl: Math.min(ttl, at[i].ttl), via: chain });
    const c = cnames.get(name);
    if (!c || via.includes(c.data)) break;
    ttl = Math.min(ttl, c.ttl);
    via.push(c.data);
    name = lower(c.data);
  }
  return out;
}

/** Throws when `msg` is not a DNS message (dns-packet's errors, wrapped by the caller). */
export function dnsFields(msg: dnsPacket.Packet): DnsFields {
  const q = msg.questions?.[0];
  const response = msg.type === 'response';
  const answers: DnsAnswer[] = (msg.answers ?? []).map((a) => ({
    name: a.name,
    type: a.type,
    ttl: (a as { ttl?: number }).ttl ?? 0,
    data: dataText(a),
  }));
  const qname = q?.name ?? '';
  return {
    kind: response ? 'response' : 'query',
    id: msg.id ?? 0,
    qname,
    qtype: q?.type ?? '',
    rcode: response ? ((msg as { rcode?: string }).rcode ?? 'NOERROR') : '',
    answers,
    resolved: response ? resolveChains(qname, answers) : [],
  };
}

/** dns-packet's per-record codecs: exported at run time, not in its typings. */
interface Codec<T> {
  decode: ((buf: Buffer, offset: number) => T) & { bytes: number };
}
const requireHere = createRequire(import.meta.url);
const codecs = {
  ...(requireHere('dns-packet') as {
    question: Codec<dnsPacket.Question>;
    answer: Codec<dnsPacket.Answer>;
    name: NameCodec;
  }),
  types: requireHere('dns-packet/types') as { toString(type: number): string },
  classes: requireHere('dns-packet/classes') as { toString(klass: number): string },
};

/**
 * Decodes a DNS message, or throws DnsWireError with a stable reason code.
 * The walker validates the structure first (counts, names, rdata lengths);
 * then dns-packet decodes each question and record where the walker found
 * it, and must consume exactly its declared length — so no type decoder can
 * read past its rdata, past the payload, or shift the records after it.
 */
export function decodeDns(payload: Buffer): dnsPacket.Packet {
  return decodeDnsCounted(payload).msg;
}

/** decodeDns, and how many bytes the decoders consumed (the end of the last record; ≤ payload.length). */
export function decodeDnsCounted(payload: Buffer): { msg: dnsPacket.Packet; bytes: number } {
  const { bounds, rdata, end } = walkDns(payload);
  // The header alone (counts zeroed) gives dns-packet's flag and rcode names.
  const head = Buffer.from(payload.subarray(0, DNS_HEADER));
  head.fill(0, 4);
  const msg = dnsPacket.decode(head);
  let k = 0;
  const take = <T>(codec: Codec<T>, n: number): T[] => {
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++, k += 2) out[i] = exact(codec, payload, bounds[k], bounds[k + 1]);
    return out;
  };
  const qd = payload.readUInt16BE(4);
  /** Records from the `r`th on (of all sections): OPAQUE_TYPES kept as bytes, the others decoded by dns-packet. */
  let r = 0;
  const records = (n: number): dnsPacket.Answer[] => {
    const out: dnsPacket.Answer[] = new Array(n);
    for (let i = 0; i < n; i++, r++, k += 2) {
      const type = rdata[2 * r];
      out[i] = OPAQUE_TYPES.has(type)
        ? opaque(payload, bounds[k], type, rdata[2 * r + 1], bounds[k + 1])
        : exact(codecs.answer, payload, bounds[k], bounds[k + 1]);
    }
    return out;
  };
  // Names through a per-message cache: records pointing at one long name cost its labels once.
  withNameCache(codecs.name, payload, () => {
    msg.questions = take(codecs.question, qd);
    msg.answers = records(payload.readUInt16BE(6));
    msg.authorities = records(payload.readUInt16BE(8));
    msg.additionals = records(payload.readUInt16BE(10));
  });
  return { msg, bytes: end };
}

/** A record of an OPAQUE_TYPES type as dns-packet gives one it has no decoder for: its rdata as bytes (a copy). */
function opaque(payload: Buffer, start: number, type: number, rdata: number, end: number): dnsPacket.Answer {
  const klass = payload.readUInt16BE(rdata - 8);
  return {
    name: codecs.name.decode(payload, start),
    type: codecs.types.toString(type),
    ttl: payload.readUInt32BE(rdata - 6),
    class: codecs.classes.toString(klass & 0x7fff),
    flush: (klass & 0x8000) !== 0,
    data: Buffer.from(payload.subarray(rdata, end)),
  } as dnsPacket.Answer;
}

function exact<T>(codec: Codec<T>, payload: Buffer, start: number, end: number): T {
  let v: T;
  try {
    v = codec.decode(payload, start);
  } catch (err) {
    // The structure was valid, so the type's rdata layout was not.
    throw new DnsWireError('bad-rdata', (err as Error).message, start);
  }
  const used = codec.decode.bytes;
  if (!Number.isFinite(used) || start + used > payload.length) {
    throw new DnsWireError('overrun', `decoder consumed ${used} bytes at ${start} of ${payload.length}`, start);
  }
  if (used !== end - start) {
    throw new DnsWireError('bad-rdata', `record decoded as ${used} bytes, declared ${end - start}`, start);
  }
  return v;
}

/** The reason code and message of a decode failure (anything not a DnsWireError is `not-dns`). */
export function dnsErrorOf(err: unknown): { code: DnsErrorCode; message: string } {
  if (err instanceof DnsWireError) return { code: err.reason, message: err.message };
  return { code: 'not-dns', message: err instanceof Error ? err.message : String(err) };
}
