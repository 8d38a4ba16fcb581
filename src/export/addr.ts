/**
 * Address text → what the encoders write: IPv4 as a number (parsed by hand,
 * no allocation), IPv6 as bytes. Flows repeat the same few IPv6 addresses
 * (LAN clients, the server), so their bytes are cached; a cache that fills
 * up starts over.
 */
import { parseIP } from '../netlink/ip.js';
import { ipv4Value } from '../netlink/prefix.js';

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
 * A dotted quad as an unsigned 32-bit number; anything else throws (an IPv6 address a RangeError).
 * The plain form is parsed by hand (netlink/prefix.ts's ipv4Value): remote addresses are too many
 * to cache, and this is the hot path.
 */
export function ipv4Number(text: string): number {
  const x = ipv4Value(text);
  return x >= 0 ? x : general(text);
}

/** Not a plain dotted quad: the general parser says why (or accepts what it can). */
function general(text: string): number {
  const b = bytesOf(text, 4);
  return b[0] * 0x1000000 + ((b[1] << 16) | (b[2] << 8) | b[3]);
}

/** The 16 bytes of an IPv6 address (cached; do not modify); anything else throws. */
export function ipv6Bytes(text: string): Buffer {
  return bytesOf(text, 16);
}
