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
  for (let hop = 0; hop <= MAX_CHAIN; hop++) {
    for (const a of addrs.get(name) ?? [])
      out.push({ name: qname, ip: a.data, ttl: Math.min(ttl, a.ttl), via: [...via] });
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
const codecs = createRequire(import.meta.url)('dns-packet') as {
  question: Codec<dnsPacket.Question>;
  answer: Codec<dnsPacket.Answer>;
  name: NameCodec;
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
  const { bounds, end } = walkDns(payload);
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
  // Names through a per-message cache: records pointing at one long name cost its labels once.
  withNameCache(codecs.name, payload, () => {
    msg.questions = take(codecs.question, payload.readUInt16BE(4));
    msg.answers = take(codecs.answer, payload.readUInt16BE(6));
    msg.authorities = take(codecs.answer, payload.readUInt16BE(8));
    msg.additionals = take(codecs.answer, payload.readUInt16BE(10));
  });
  return { msg, bytes: end };
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
