/**
 * scope(cidrs=[…]) and redact(fields=[…]): what the policy inserts right after
 * each source of a principal's graph. scope keeps a record only when one of
 * its addresses is inside the principal's prefixes (a record with no address
 * is not shown); redact removes fields before any filter can read them.
 */
import { z } from 'zod';
import { cidrMatcher } from '../expr/cidr.js';
import { isCidr } from '../expr/parse.js';
import type { FieldCatalog } from '../fields.js';
import { FieldPath, fieldValuesGetter } from '../params.js';
import { type Rec, registerFilter } from '../registry.js';

/** Where records keep addresses: conntrack tuples, DNS endpoints and answers, neighbours, packets. */
export const ADDRESS_FIELDS = [
  'orig.src',
  'orig.dst',
  'reply.src',
  'reply.dst',
  'client',
  'server',
  'resolved.ip',
  'ip',
  'src',
  'dst',
  'ipHeader.src',
  'ipHeader.dst',
];

registerFilter({
  name: 'scope',
  description: 'keep records with an address inside the prefixes: scope(cidrs=[10.1.0.0/24, fd00:1::/64])',
  params: z.object({ cidrs: z.array(z.string().refine(isCidr, 'an address prefix')).min(1) }).strict(),
  positional: (args) => ({ cidrs: args }),
  step: (p) => {
    const inside = p.cidrs.map(cidrMatcher);
    const readers = ADDRESS_FIELDS.map(fieldValuesGetter);
    return (r, emit) => {
      for (const read of readers) for (const v of read(r)) if (inside.some((m) => m(v))) return emit(r);
    };
  },
});

function without(r: Rec, path: string[]): Rec {
  const [head, ...rest] = path;
  if (!(head in r)) return r;
  const out = { ...r };
  if (rest.length === 0) delete out[head];
  else if (out[head] && typeof out[head] === 'object' && !Array.isArray(out[head]))
    out[head] = without(out[head] as Rec, rest);
  return out;
}

registerFilter({
  name: 'redact',
  description: 'remove fields from every record: redact(fields=[mark, uid])',
  params: z.object({ fields: z.array(FieldPath).min(1) }).strict(),
  positional: (args) => ({ fields: args }),
  output: (input, p) => {
    const out: FieldCatalog = new Map();
    for (const [k, v] of input) if (!p.fields.some((f) => k === f || k.startsWith(`${f}.`))) out.set(k, v);
    return out;
  },
  step: (p) => {
    const paths = p.fields.map((f) => f.split('.'));
    return (r, emit) => {
      let out = r;
      for (const path of paths) out = without(out, path);
      emit(out);
    };
  },
});
