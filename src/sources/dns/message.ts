/**
 * A DNS message (decoded by dns-packet) to the DNS part of a DnsRecord:
 * question, rcode, answers, and `resolved` — every final address of the
 * asked name with the CNAME chain that led there.
 */
import * as dnsPacket from 'dns-packet';
import type { DnsAnswer, DnsResolved } from './record.js';

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
      addrs.set(k, [...(addrs.get(k) ?? []), a]);
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

export function decodeDns(payload: Buffer): dnsPacket.Packet {
  return dnsPacket.decode(payload);
}
