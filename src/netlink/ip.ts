/** IP address bytes ⇄ text, IPv6 compressed per RFC 5952. */
import { isIPv4, isIPv6 } from 'node:net';
import { FlowgrabError } from '../errors.js';

export function formatIPv4(b: Buffer, o: number): string {
  return dottedQuad(b, o);
}

/** "0" … "255" as bytes: no number-to-string conversion per byte. */
const DECIMAL_BYTES = Array.from({ length: 256 }, (_, i) => Buffer.from(String(i), 'latin1'));
/** Where a dotted quad is put together (15 bytes at most) before it becomes one string. */
const quad = Buffer.alloc(16);

/**
 * The dotted quad at `b[o]` as one flat string: written as bytes, then read as one string. A template
 * (`${a}.${b}.${c}.${d}`) makes a string per step and a cons string past 12 characters: about 170 bytes of
 * garbage per address, against one string of about 32 (a new address per NEW event, at flood rates).
 */
function dottedQuad(b: Buffer, o: number): string {
  let n = 0;
  for (let k = 0; k < 4; k++) {
    const d = DECIMAL_BYTES[b[o + k]];
    for (let j = 0; j < d.length; j++) quad[n++] = d[j];
    quad[n++] = 46; // '.'
  }
  return quad.toString('latin1', 0, n - 1);
}
const CACHE_BITS = 12;
/** A direct-mapped cache of IPv4 texts (4096 slots, bounded): a slot's address and its text. */
const cachedAddr = new Uint32Array(1 << CACHE_BITS);
const cachedText: string[] = new Array<string>(1 << CACHE_BITS).fill('0.0.0.0');

/**
 * formatIPv4 through a small cache: the addresses of a flow repeat within
 * one record (the reply tuple mirrors the original) and across records (a
 * busy host's own address), and each text not built is garbage not made.
 */
export function formatIPv4Cached(b: Buffer, o: number): string {
  const v = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  const slot = Math.imul(v, 0x9e3779b1) >>> (32 - CACHE_BITS);
  if (cachedAddr[slot] === v) return cachedText[slot];
  const text = dottedQuad(b, o);
  cachedAddr[slot] = v;
  cachedText[slot] = text;
  return text;
}

export function formatIPv6(b: Buffer, o: number): string {
  const g: number[] = new Array(8);
  for (let i = 0; i < 8; i++) g[i] = b.readUInt16BE(o + 2 * i);
  // IPv4-mapped addresses read best in dotted form.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(b, o + 12)}`;
  }
  // The longest run of zero groups (length ≥ 2, first on a tie) becomes "::".
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

export function formatIP(b: Buffer, o: number, len: number): string {
  if (len === 4) return formatIPv4(b, o);
  if (len === 16) return formatIPv6(b, o);
  return b.toString('hex', o, o + len);
}

/** Text → 4 or 16 bytes; throws a FlowgrabError for anything else. */
export function parseIP(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text)) throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `not an IP address: ${text}`);
  let s = text;
  const out = Buffer.alloc(16);
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const t = parseIP(v4[1]);
    s = `${s.slice(0, -v4[1].length)}${t.readUInt16BE(0).toString(16)}:${t.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...new Array(8 - hs.length - ts.length).fill('0'), ...ts];
  groups.forEach((x, i) => {
    out.writeUInt16BE(Number.parseInt(x, 16), 2 * i);
  });
  return out;
}

export const ipFamily = (text: string): 4 | 6 | 0 => (isIPv4(text) ? 4 : isIPv6(text) ? 6 : 0);

/**
 * An address as records write it (IPv6 compressed per RFC 5952, lower case), so one address is one key;
 * undefined for text that is no address.
 */
export function canonicalIP(text: string): string | undefined {
  if (ipFamily(text) === 0) return undefined;
  const b = parseIP(text);
  return formatIP(b, 0, b.length);
}
