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
import { checkFields, FieldPaths } from '../params.js';
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
      fields: FieldPaths.min(1),
      mode: z.enum(['prefix', 'hash']).default('prefix'),
      key: z.string().min(8).optional(),
      secret: z.string().min(1).optional(),
      /**
       * Whose pseudonyms these are: the key used is HMAC-SHA256(key, context). A policy sets it (auth/authorize.ts)
       * so that users, and records a user chose (a replayed file), never share a mapping with each other.
       */
      context: z.string().max(256).optional(),
    })
    .strict(),
  positional: (args) => ({ fields: args }),
  check: (p, ctx) => [
    ...checkFields(p.fields, ctx.input, ctx.path, 'anonymize'),
    ...(p.secret !== undefined && !secrets.has(p.secret)
      ? [{ code: 'bad_parameter', path: ctx.path, message: `anonymize: no secret named ${p.secret}` }]
      : []),
  ],
  step: (p) => {
    const base = (p.secret !== undefined ? secrets.get(p.secret) : p.key) ?? processKey;
    const key = p.context === undefined ? base : createHmac('sha256', base).update(p.context).digest('hex');
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
      for (const path of paths) anonymizeAt(out, path, 0, anon);
      emit(out);
    };
  },
});

/**
 * Anonymizes, in `v` (the step's own copy), what `path[i…]` names: through lists (resolved.ip is the ip of every
 * resolved entry), and at the path's end every string in the value, however it nests (anonymize(orig) rewrites
 * orig.src and orig.dst). Numbers and other scalars stay. The policy's ordering rules count a named field as
 * anonymized (auth/order.ts): nothing under it may stay as it was. Returns the value to put in place of `v`.
 */
function anonymizeAt(v: unknown, path: string[], i: number, anon: (s: string) => string): unknown {
  if (i === path.length) return anonymizeAll(v, anon);
  if (Array.isArray(v)) {
    for (let j = 0; j < v.length; j++) v[j] = anonymizeAt(v[j], path, i, anon);
    return v;
  }
  if (v === null || typeof v !== 'object' || !Object.hasOwn(v, path[i])) return v;
  (v as Rec)[path[i]] = anonymizeAt((v as Rec)[path[i]], path, i + 1, anon);
  return v;
}

function anonymizeAll(v: unknown, anon: (s: string) => string): unknown {
  if (typeof v === 'string') return anon(v);
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    for (let j = 0; j < v.length; j++) v[j] = anonymizeAll(v[j], anon);
    return v;
  }
  for (const k of Object.keys(v)) (v as Rec)[k] = anonymizeAll((v as Rec)[k], anon);
  return v;
}
