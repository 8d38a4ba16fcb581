/**
 * Address prefixes (CIDR) in one place: parse and validate, format, and
 * match an address against a prefix. Filters (match `in`, scope), the policy
 * (auth) and the daemon's queue scope all use this copy; ip.ts holds the
 * address bytes ⇄ text half.
 */
import { isIP } from 'node:net';
import { FlowgrabError } from '../errors.js';
import { formatIP, parseIP } from './ip.js';

/** A prefix with its host bits cleared: 4 or 16 bytes and a length in bits. */
export interface Prefix {
  readonly family: 4 | 6;
  readonly bytes: Buffer;
  readonly len: number;
}

/**
 * `10.1.0.0/24`, `fd00:1::/64` → a Prefix (host bits cleared, so
 * `10.1.0.7/24` is 10.1.0.0/24); undefined for anything else: no length, a
 * length out of range or not plain digits, a zone index (`%eth0`), two slashes.
 */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || text.length > 64) return undefined;
  const ip = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || ip.includes('%')) return undefined;
  const family = isIP(ip);
  if (family !== 4 && family !== 6) return undefined;
  const len = Number(bits);
  if (len > (family === 4 ? 32 : 128)) return undefined;
  const bytes = parseIP(ip);
  maskBytes(bytes, len);
  return { family, bytes, len };
}

/** True when parsePrefix takes `text`: the one validation of an address prefix. */
export const isPrefix = (text: string): boolean => parsePrefix(text) !== undefined;

/** The canonical text: network address as the records print it, then `/len`. */
export function formatPrefix(p: Prefix): string {
  return `${formatIP(p.bytes, 0, p.bytes.length)}/${p.len}`;
}

/** Clears every bit of `b` after the first `len`, in place. */
export function maskBytes(b: Buffer, len: number): void {
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    b[i] &= (0xff << (8 - keep)) & 0xff;
  }
}

/**
 * A plain dotted quad as an unsigned 32-bit number, -1 for anything else.
 * By hand, without allocating: the matchers call it per record.
 */
export function ipv4Value(text: string): number {
  let x = 0;
  let n = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + c - 48;
      if (++digits > 3 || n > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      x = x * 256 + n;
      dots++;
      n = 0;
      digits = 0;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? x * 256 + n : -1;
}

/**
 * A test "is this value an address inside the prefix", compiled once:
 * IPv4 by integer arithmetic, IPv6 by bytes. Values that are not address
 * text (numbers, undefined, garbage) are outside; an IPv4 prefix does not
 * take IPv4-mapped IPv6 text, as records print the two families apart.
 * Throws a FlowgrabError when `prefix` is not one.
 */
export function prefixMatcher(prefix: Prefix | string): (v: unknown) => boolean {
  const p = typeof prefix === 'string' ? parsePrefix(prefix) : prefix;
  if (!p) throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `not an address prefix: ${String(prefix)}`);
  const { bytes, len } = p;
  if (p.family === 4) {
    const size = 2 ** (32 - len);
    const net = bytes.readUInt32BE(0) / size;
    return (v) => {
      if (typeof v !== 'string') return false;
      const n = ipv4Value(v);
      return n >= 0 && Math.floor(n / size) === net;
    };
  }
  const whole = len >> 3;
  const rest = len & 7;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (v) => {
    // A zone index (fe80::1%eth0) names a link, not an address in a prefix.
    if (typeof v !== 'string' || !v.includes(':') || v.includes('%') || isIP(v) !== 6) return false;
    const b = parseIP(v);
    for (let i = 0; i < whole; i++) if (b[i] !== bytes[i]) return false;
    return rest === 0 || (b[whole] & mask) === bytes[whole];
  };
}

/** True when `ip` (address text) lies inside `p`. */
export const prefixContains = (p: Prefix | string, ip: string): boolean => prefixMatcher(p)(ip);
