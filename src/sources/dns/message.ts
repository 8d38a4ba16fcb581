/**
 * A DNS message (decoded by dns-packet) to the DNS part of a DnsRecord:
 * question, rcode, answers, and `resolved` — every final address of the
 * asked name with the CNAME chain that led there.
 */
import { createRequire } from 'node:module';
import * as dnsPacket from 'dns-packet';
import type { DnsAnswer, DnsResolved } from './record.js';
import { type DnsErrorCode, DnsWireError, walkDns } from './wire.js';

// dns-packet's own type table (no typings, hence require), to compare what it decoded with what the walker saw.
const rrTypeName = (createRequire(import.meta.url)('dns-packet/types.js') as { toString(n: number): string }).toString;

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

/**
 * Decodes a DNS message, or throws DnsWireError with a stable reason code.
 * The walker validates the structure first (counts, names, rdata lengths);
 * then dns-packet decodes it, and must have read exactly the records the
 * walker saw: the same number, the same types, ending at the same byte.
 */
export function decodeDns(payload: Buffer): dnsPacket.Packet {
  const walked = walkDns(payload);
  let msg: dnsPacket.DecodedPacket;
  try {
    msg = dnsPacket.decode(payload);
  } catch (err) {
    // The structure was valid, so a type's rdata layout was not.
    throw new DnsWireError('bad-rdata', (err as Error).message, 0);
  }
  const used = dnsPacket.decode.bytes;
  if (!Number.isFinite(used) || used > payload.length) {
    throw new DnsWireError('overrun', `decoder consumed ${used} of ${payload.length} bytes`, 0);
  }
  if (used !== walked.end) {
    throw new DnsWireError('bad-rdata', `decoder read ${used} bytes where the records declare ${walked.end}`, 0);
  }
  const rrs = [...(msg.answers ?? []), ...(msg.authorities ?? []), ...(msg.additionals ?? [])];
  if (rrs.length !== walked.rrTypes.length) throw new DnsWireError('bad-count', 'decoder saw another record count', 4);
  for (let i = 0; i < rrs.length; i++) {
    if (rrs[i].type !== rrTypeName(walked.rrTypes[i])) {
      throw new DnsWireError('bad-rdata', `record ${i} decoded as ${rrs[i].type}, declared ${walked.rrTypes[i]}`, 0);
    }
  }
  return msg;
}

/** The reason code and message of a decode failure (anything not a DnsWireError is `not-dns`). */
export function dnsErrorOf(err: unknown): { code: DnsErrorCode; message: string } {
  if (err instanceof DnsWireError) return { code: err.reason, message: err.message };
  return { code: 'not-dns', message: err instanceof Error ? err.message : String(err) };
}
