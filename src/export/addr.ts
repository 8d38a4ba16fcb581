/**
 * Address text → bytes written straight into an export buffer. Flows repeat
 * the same few addresses (LAN clients, the NAT address), so the bytes of
 * each address are cached; a cache that fills up starts over.
 */
import { parseIP } from '../netlink/ip.js';

const CACHE_MAX = 8192;
const cache = new Map<string, Buffer>();

function bytesOf(text: string, len: 4 | 16): Buffer {
  let b = cache.get(text);
  if (b === undefined) {
    b = parseIP(text);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(text, b);
  }
  if (b.length !== len) throw new RangeError(`${text} is not an IPv${len === 4 ? 4 : 6} address`);
  return b;
}

/**
 * Writes the 4 bytes of a dotted quad at `o`; throws a RangeError for anything else.
 * Parsed by hand: remote addresses are too many to cache, and this is the hot path.
 */
export function writeIPv4(buf: Buffer, o: number, text: string): void {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + c - 48;
      if (++digits > 3 || n > 255) break;
    } else if (c === 46 && digits > 0 && part < 3) {
      buf[o + part++] = n;
      n = 0;
      digits = 0;
    } else {
      digits = -1;
      break;
    }
  }
  if (part === 3 && digits > 0 && digits <= 3 && n <= 255) {
    buf[o + 3] = n;
    return;
  }
  // Not a plain dotted quad: the general parser says why (or accepts what it can).
  const b = bytesOf(text, 4);
  buf[o] = b[0];
  buf[o + 1] = b[1];
  buf[o + 2] = b[2];
  buf[o + 3] = b[3];
}

/** Writes the 16 bytes of an IPv6 address at `o`; throws a RangeError for anything else. */
export function writeIPv6(buf: Buffer, o: number, text: string): void {
  bytesOf(text, 16).copy(buf, o);
}
