/**
 * Compression-aware name decoding with a per-message cache, lent to
 * dns-packet while decodeDns runs. dns-packet decodes a compressed name by
 * re-reading its target every time, so a message whose records all point at
 * one long name costs (records × labels) string operations; with the cache a
 * target's labels are read once per message. Names come out in presentation
 * form (RFC 1035 §5.1): a '.' or '\' inside a label is escaped with '\',
 * any other byte outside '!'..'~' is written \DDD. dns-packet joins raw
 * labels with '.', so a label "www.bank" followed by "com" read as the name
 * www.bank.com (three labels): a host answering for a name of its choosing
 * could pass for another in every name-based list and policy. What names it
 * accepts and the bytes it consumes are exactly dns-packet's (a property test
 * compares them); a name dns-packet refuses is refused with its error.
 */

type NameDecode = ((buf: Buffer, offset?: number, opts?: { mail?: boolean }) => string) & { bytes: number };
export interface NameCodec {
  decode: NameDecode;
}

interface Suffix {
  labels: string[];
  /** dns-packet's totalLength: label bytes + 1 each. */
  total: number;
  /** The labels joined, once asked for (records pointing at one name share it). */
  text?: string;
}

const MAX_DEPTH = 127;

interface Read {
  suffix: Suffix | null;
  consumed: number;
}

/** Reads names of `buf`, each suffix once (a per-message cache); null where dns-packet would refuse. */
function nameReader(buf: Buffer): (at: number) => Read {
  const cache = new Map<number, Suffix | null>();

  /** Labels from `at` to the end of the name, following pointers. */
  function suffix(at: number, depth: number): Suffix | null {
    const hit = cache.get(at);
    if (hit !== undefined) return hit;
    let s: Suffix | null = null;
    if (depth <= MAX_DEPTH) s = walk(at, at, depth).suffix;
    cache.set(at, s);
    return s;
  }

  /** Walks the name at `p` (pointers must go below `floor`); consumed counts bytes in place, as dns-packet does. */
  function walk(start: number, floor: number, depth: number): Read {
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
        labels.push(labelText(buf, p + 1, p + 1 + len));
        p += 1 + len;
      } else if ((len & 0xc0) === 0xc0) {
        if (p + 2 > buf.length) return { suffix: null, consumed: 0 };
        const target = buf.readUInt16BE(p) - 0xc000;
        if (target >= floor) return { suffix: null, consumed: 0 };
        const rest = suffix(target, depth + 1);
        if (!rest || total + rest.total > 254) return { suffix: null, consumed: 0 };
        // Nothing before the pointer: the target's suffix itself (never mutated), its text joined once.
        if (labels.length === 0) return { suffix: rest, consumed: p + 2 - start };
        return { suffix: { labels: labels.concat(rest.labels), total: total + rest.total }, consumed: p + 2 - start };
      } else return { suffix: null, consumed: 0 };
    }
  }

  return (at) => walk(at, at, 0);
}

/** Runs `f` with `codec.decode` reading names of `buf` through a cache, in presentation form; restores it afterwards. */
export function withNameCache<T>(codec: NameCodec, buf: Buffer, f: () => T): T {
  const original = codec.decode;
  const read = nameReader(buf);
  const decode = ((b: Buffer, offset = 0, opts?: { mail?: boolean }): string => {
    // dns-packet reads a NaN offset (it passes one after reading past an rdata) as 0; a negative one it cannot read.
    const at = Number.isInteger(offset) ? offset : 0;
    // The mail form (an SOA's rname) escapes a '.' inside a label, as every label here is escaped anyway.
    const r = at < 0 ? null : (b === buf ? read : nameReader(b))(at);
    if (r?.suffix) {
      decode.bytes = r.consumed;
      const sfx = r.suffix;
      sfx.text ??= sfx.labels.length === 0 ? '.' : sfx.labels.join('.');
      return sfx.text;
    }
    // Where ours gives up, dns-packet's refuses (a bad pointer, a name too long, a reserved label type): its error.
    original(b, offset, opts);
    throw new Error('Cannot decode name');
  }) as NameDecode;
  decode.bytes = 0;
  codec.decode = decode;
  try {
    return f();
  } finally {
    codec.decode = original;
  }
}

/** A label's bytes in presentation form: '.' and '\\' escaped, bytes outside '!'..'~' as \\DDD. */
function labelText(b: Buffer, start: number, end: number): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c < 0x21 || c > 0x7e || c === 0x2e || c === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return b.toString('latin1', start, end);
  let out = '';
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c === 0x2e || c === 0x5c) out += `\\${String.fromCharCode(c)}`;
    else if (c < 0x21 || c > 0x7e) out += `\\${String(c).padStart(3, '0')}`;
    else out += String.fromCharCode(c);
  }
  return out;
}
