/**
 * Compression-aware name decoding with a per-message cache, lent to
 * dns-packet while decodeDns runs. dns-packet decodes a compressed name by
 * re-reading its target every time, so a message whose records all point at
 * one long name costs (records × labels) string operations; with the cache a
 * target's labels are read once per message. The result and the consumed
 * byte count are exactly dns-packet's (a property test compares them); on
 * anything unusual (a bad pointer, a label type it refuses, the mail form)
 * the original decoder runs, with its own checks and errors.
 */

type NameDecode = ((buf: Buffer, offset?: number, opts?: { mail?: boolean }) => string) & { bytes: number };
export interface NameCodec {
  decode: NameDecode;
}

interface Suffix {
  labels: string[];
  /** dns-packet's totalLength: label bytes + 1 each. */
  total: number;
}

const MAX_DEPTH = 127;

/** Runs `f` with `codec.decode` memoising names of `buf`; restores the original afterwards. */
export function withNameCache<T>(codec: NameCodec, buf: Buffer, f: () => T): T {
  const original = codec.decode;
  const cache = new Map<number, Suffix | null>();

  /** Labels from `at` to the end of the name, following pointers; null where dns-packet would refuse or differ. */
  function suffix(at: number, depth: number): Suffix | null {
    const hit = cache.get(at);
    if (hit !== undefined) return hit;
    let s: Suffix | null = null;
    if (depth <= MAX_DEPTH) s = walk(at, at, depth).suffix;
    cache.set(at, s);
    return s;
  }

  /** Walks the name at `p` (pointers must go below `floor`); consumed counts bytes in place, as dns-packet does. */
  function walk(start: number, floor: number, depth: number): { suffix: Suffix | null; consumed: number } {
    const labels: string[] = [];
    let total = 0;
    for (let p = start; ; ) {
      if (p >= buf.length) return { suffix: null, consumed: 0 };
      const len = buf[p];
      if (len === 0) return { suffix: { labels, total }, consumed: p + 1 - start };
      if ((len & 0xc0) === 0) {
        if (p + 1 + len > buf.length) return { suffix: null, consumed: 0 };
        total += len + 1;
        if (total > 254) return { suffix: null, consumed: 0 };
        labels.push(buf.toString('utf-8', p + 1, p + 1 + len));
        p += 1 + len;
      } else if ((len & 0xc0) === 0xc0) {
        if (p + 2 > buf.length) return { suffix: null, consumed: 0 };
        const target = buf.readUInt16BE(p) - 0xc000;
        if (target >= floor) return { suffix: null, consumed: 0 };
        const rest = suffix(target, depth + 1);
        if (!rest || total + rest.total > 254) return { suffix: null, consumed: 0 };
        // Copy-free when nothing precedes the pointer: suffixes are never mutated.
        const all = labels.length ? labels.concat(rest.labels) : rest.labels;
        return { suffix: { labels: all, total: total + rest.total }, consumed: p + 2 - start };
      } else return { suffix: null, consumed: 0 };
    }
  }

  const cached = ((b: Buffer, offset = 0, opts?: { mail?: boolean }): string => {
    // dns-packet may pass NaN (after reading past its rdata): its decoder reads that as 0; we must not walk it.
    if (b === buf && !opts?.mail && Number.isInteger(offset) && offset >= 0) {
      const r = walk(offset, offset, 0);
      if (r.suffix) {
        cached.bytes = r.consumed;
        return r.suffix.labels.length === 0 ? '.' : r.suffix.labels.join('.');
      }
    }
    // dns-packet's decoder sets `name.decode.bytes`, which is this function while it is lent.
    return original(b, offset, opts);
  }) as NameDecode;
  cached.bytes = 0;
  codec.decode = cached;
  try {
    return f();
  } finally {
    codec.decode = original;
  }
}
