/**
 * anonymize(fields…, mode=prefix|hash, key=…): replaces addresses so that
 * two addresses sharing an n-bit prefix still share one after (prefix
 * preserving, in the manner of Crypto-PAn, with HMAC-SHA256 as the
 * pseudo-random function), or with a keyed hash. Same key → same mapping,
 * so flows and processes agree; the default key is random per process.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatIP, parseIP } from '../../netlink/ip.js';
import { checkFields, FieldPath } from '../params.js';
import { defineFilter, type Rec } from '../registry.js';

const processKey = randomBytes(32).toString('hex');

/**
 * Keys known by name, for anonymize(secret=NAME): the daemon registers its
 * secret here and a policy makes every anonymize use it, so no user can pick
 * (and so invert) the key; the key itself never appears in a graph.
 */
const secrets = new Map<string, string>();

export function setAnonymizeSecret(name: string, key: string): void {
  secrets.set(name, key);
}

export function prefixPreserving(ip: string, key: string): string {
  const fam = isIP(ip);
  if (!fam) return ip;
  const inp = parseIP(ip);
  const out = Buffer.alloc(inp.length);
  const bits = inp.length * 8;
  for (let i = 0; i < bits; i++) {
    // The i-th output bit flips the input bit by a PRF of the i input bits before it.
    const prefix = Buffer.from(inp);
    const keepBytes = i >> 3;
    prefix.fill(0, keepBytes + 1);
    prefix[keepBytes] &= (0xff << (8 - (i & 7))) & 0xff;
    const flip =
      createHmac('sha256', key)
        .update(prefix)
        .update(Buffer.from([i]))
        .digest()[0] >> 7;
    const bit = (inp[i >> 3] >> (7 - (i & 7))) & 1;
    out[i >> 3] |= (bit ^ flip) << (7 - (i & 7));
  }
  return formatIP(out, 0, out.length);
}

export function keyedHash(v: string, key: string): string {
  return createHmac('sha256', key).update(v).digest('hex').slice(0, 16);
}

export const anonymizeFilter = defineFilter({
  name: 'anonymize',
  description:
    'replace addresses (prefix-preserving) or other values (keyed hash): anonymize(orig.src, orig.dst, mode=prefix)',
  params: z
    .object({
      fields: z.array(FieldPath).min(1),
      mode: z.enum(['prefix', 'hash']).default('prefix'),
      key: z.string().min(8).optional(),
      secret: z.string().min(1).optional(),
    })
    .strict(),
  positional: (args) => ({ fields: args }),
  check: (p, ctx) => [
    ...checkFields(p.fields, ctx.input, ctx.path, 'anonymize'),
    ...(p.secret !== undefined && !secrets.has(p.secret)
      ? [{ code: 'bad_param', path: ctx.path, message: `anonymize: no secret named ${p.secret}` }]
      : []),
  ],
  step: (p) => {
    const key = (p.secret !== undefined ? secrets.get(p.secret) : p.key) ?? processKey;
    const cache = new Map<string, string>();
    const anon = (v: string) => {
      let a = cache.get(v);
      if (a === undefined) {
        a = p.mode === 'hash' || !isIP(v) ? keyedHash(v, key) : prefixPreserving(v, key);
        if (cache.size > 65536) cache.clear();
        cache.set(v, a);
      }
      return a;
    };
    const paths = p.fields.map((f) => f.split('.'));
    return (r, emit) => {
      const out = structuredClone(r);
      for (const path of paths) {
        let o: unknown = out;
        for (let i = 0; i < path.length - 1 && o && typeof o === 'object'; i++) o = (o as Rec)[path[i]];
        if (!o || typeof o !== 'object') continue;
        const last = path[path.length - 1];
        const v = (o as Rec)[last];
        if (typeof v === 'string') (o as Rec)[last] = anon(v);
        else if (Array.isArray(v)) (o as Rec)[last] = v.map((x) => (typeof x === 'string' ? anon(x) : x));
      }
      emit(out);
    };
  },
});
