/**
 * Address text for the SPIN example: canonical forms (so one address is one
 * key), SPIN's sort order (IPv4 before IPv6, then by address bytes), and
 * prefixes for the lists.
 */
import { isIP } from 'node:net';

/** The canonical text of an address (IPv6 compressed, lower case), or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const fam = isIP(text);
  if (fam === 4) return text.split('.').map(Number).join('.');
  if (fam !== 6) return undefined;
  return formatV6(v6Bytes(text));
}

export function ipFamilyOf(ip: string): 4 | 6 | undefined {
  const f = isIP(ip);
  return f === 4 || f === 6 ? f : undefined;
}

function v6Bytes(text: string): Buffer {
  const b = Buffer.alloc(16);
  let s = text.toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const p = v4[1].split('.').map(Number);
    s = `${s.slice(0, -v4[1].length)}${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':').filter((x) => x !== '') : [];
  const r = rest ? rest.split(':').filter((x) => x !== '') : [];
  const groups = [...h.map((x) => Number.parseInt(x, 16))];
  const after = r.map((x) => Number.parseInt(x, 16));
  if (rest !== undefined) while (groups.length + after.length < 8) groups.push(0);
  groups.push(...after);
  for (let i = 0; i < 8; i++) b.writeUInt16BE(groups[i] ?? 0, i * 2);
  return b;
}

function formatV6(b: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(i * 2));
  // RFC 5952: the longest run (≥ 2) of zero groups becomes '::', the first on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Address bytes: 4 for IPv4, 16 for IPv6. */
export function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  return v6Bytes(ip);
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
  const base = family === 4 ? [...bytes].join('.') : formatV6(bytes);
  return { family, bytes, len, text: len === max ? base : `${base}/${len}` };
}

function maskBytes(b: Buffer, len: number): void {
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

/** Lower-case key of a domain for matching (case as seen on the wire is kept for display). */
export const domainKey = (d: string): string => (d.endsWith('.') ? d : `${d}.`).toLowerCase();

/** SPIN's order of a node's `domains`: by length, then case-insensitively. */
export function compareDomains(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  return la < lb ? -1 : la > lb ? 1 : a < b ? -1 : a > b ? 1 : 0;
}
