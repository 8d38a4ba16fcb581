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

/** Writes the 4 bytes of a dotted quad at `o`; throws a RangeError for anything else. */
export function writeIPv4(buf: Buffer, o: number, text: string): void {
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
