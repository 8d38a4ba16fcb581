/**
 * Address text for the SPIN example: canonical forms (so one address is one
 * key), SPIN's sort order (IPv4 before IPv6, then by address bytes), and
 * prefixes for the lists.
 */
import { isIP } from 'node:net';
import { canonicalIP, formatIP, parseIP } from 'flowgrab';

/**
 * The canonical text of an address, or undefined when it is not one: the
 * form flowgrab's records carry (IPv6 compressed per RFC 5952, lower case,
 * IPv4-mapped in dotted form), so one address is one key.
 */
export function canonicalIp(text: string): string | undefined {
  const pct = text.indexOf('%'); // a zone index is dropped
  return canonicalIP(pct >= 0 ? text.slice(0, pct) : text);
}

export function ipFamilyOf(ip: string): 4 | 6 | undefined {
  const f = isIP(ip);
  return f === 4 || f === 6 ? f : undefined;
}

/** Address bytes: 4 for IPv4, 16 for IPv6 (a zone index is dropped). */
export function ipBytes(ip: string): Buffer {
  const pct = ip.indexOf('%');
  return parseIP(pct >= 0 ? ip.slice(0, pct) : ip);
}

/**
 * Addresses in SPIN's order (compareIps), each parsed once: sorting a node's 1024 addresses with compareIps
 * parsed each of them at every comparison (about 20 000 parses per nodeInfo).
 */
export function sortIps(ips: Iterable<string>): string[] {
  const keyed = [...ips].map((ip) => ({ ip, key: `${isIP(ip)}${ipBytes(ip).toString('hex')}` }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.ip);
}

/** SPIN's order of a node's `ips`: IPv4 before IPv6, then by address bytes. */
export function compareIps(a: string, b: string): number {
  const fa = isIP(a);
  const fb = isIP(b);
  if (fa !== fb) return fa - fb;
  return Buffer.compare(ipBytes(a), ipBytes(b));
}

export interface Prefix {
  family: 4 | 6;
  bytes: Buffer;
  len: number;
  text: string;
}

/** `192.0.2.0/24`, `2001:db8::/32` or a bare address (a full-length prefix); undefined when malformed. */
export function parsePrefix(text: string): Prefix | undefined {
  const [addr, lenText, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const ip = canonicalIp(addr);
  if (!ip) return undefined;
  const family = ipFamilyOf(ip)!;
  const max = family === 4 ? 32 : 128;
  const len = lenText === undefined ? max : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > max || (lenText !== undefined && !/^\d+$/.test(lenText)))
    return undefined;
  const bytes = ipBytes(ip);
  maskBytes(bytes, len);
  const base = formatIP(bytes, 0, bytes.length);
  return { family, bytes, len, text: len === max ? base : `${base}/${len}` };
}

/** Zeroes the bits of `b` past the first `len`. */
export function maskBytes(b: Buffer, len: number): void {
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    b[i] &= (0xff << (8 - keep)) & 0xff;
  }
}

export function prefixContains(p: Prefix, ip: string): boolean {
  if (ipFamilyOf(ip) !== p.family) return false;
  const b = ipBytes(ip);
  maskBytes(b, p.len);
  return b.equals(p.bytes);
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/i;

/** A DNS name as SPIN prints them (trailing dot), or undefined when `text` is no host name with a dot in it. */
export function canonicalDomain(text: string): string | undefined {
  const t = text.endsWith('.') ? text.slice(0, -1) : text;
  if (t.length === 0 || t.length > 253 || !t.includes('.')) return undefined;
  const labels = t.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  if (/^[0-9]+$/.test(labels.at(-1)!)) return undefined;
  return `${t}.`;
}

/**
 * Where the first label of a name in presentation form ends: its first dot that no backslash escapes (-1:
 * none). flowgrab writes a dot inside a label as `\.`: a label "x.bank" under com is `x\.bank.com`, whose
 * parent is `com`, not `bank.com`.
 */
export function labelEnd(name: string): number {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c)
      i++; // the escaped character (or the first digit of \DDD) is no separator
    else if (c === 0x2e) return i;
  }
  return -1;
}

/** Lower-case key of a domain for matching (case as seen on the wire is kept for display). */
export const domainKey = (d: string): string => (d.endsWith('.') ? d : `${d}.`).toLowerCase();

/** SPIN's order of a node's `domains`: by length, then case-insensitively. */
export function compareDomains(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  return la < lb ? -1 : la > lb ? 1 : a < b ? -1 : a > b ? 1 : 0;
}
