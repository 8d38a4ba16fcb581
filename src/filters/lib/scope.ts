/**
 * scope(cidrs=[…]) and redact(fields=[…]): what the policy inserts right after
 * each source of a principal's graph. scope keeps a record only when one of
 * its addresses is inside the principal's prefixes (a record with no address
 * is not shown); redact removes fields before any filter can read them.
 */
import { z } from 'zod';
import { isPrefix, prefixMatcher } from '../../netlink/prefix.js';
import type { FieldCatalog } from '../fields.js';
import { FieldPaths, fieldValuesGetter } from '../params.js';
import { defineFilter, type Rec } from '../registry.js';

/**
 * Where records keep addresses: conntrack tuples, DNS endpoints and answers, neighbours, packets, and exported
 * flows (src, dst and their reply tuple rsrc, rdst: records nats() reads).
 */
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
  'rsrc',
  'rdst',
  'ip.src',
  'ip.dst',
];

export const scopeFilter = defineFilter({
  name: 'scope',
  description: 'keep records with an address inside the prefixes: scope(cidrs=[10.1.0.0/24, fd00:1::/64])',
  params: z.object({ cidrs: z.array(z.string().refine(isPrefix, 'an address prefix')).min(1) }).strict(),
  positional: (args) => ({ cidrs: args }),
  step: (p) => {
    const inside = p.cidrs.map((c) => prefixMatcher(c));
    const readers = ADDRESS_FIELDS.map(fieldValuesGetter);
    return (r, emit) => {
      for (const read of readers) for (const v of read(r)) if (inside.some((m) => m(v))) return emit(r);
    };
  },
});

/**
 * Fields that hold the same address as another (conntrack's reply tuple
 * mirrors the original one: orig.src comes back as reply.dst; a DNS answer's
 * data is the resolved address). Redacting one redacts its mirrors: under
 * NAT a mirror may differ, but it still names a party to the connection.
 */
const MIRRORS: Record<string, string[]> = {
  'orig.src': ['reply.dst'],
  'orig.dst': ['reply.src'],
  'reply.src': ['orig.dst'],
  'reply.dst': ['orig.src'],
  'resolved.ip': ['answers.data'],
  'answers.data': ['resolved.ip'],
  // An exported flow's reply tuple: src comes back as rdst.
  src: ['rdst'],
  dst: ['rsrc'],
  rsrc: ['dst'],
  rdst: ['src'],
};

export function addressMirrors(field: string): string[] {
  return MIRRORS[field] ?? [];
}

/** The fields a redact(fields) removes: each named one and its mirrors. */
export function redactedFields(fields: string[]): string[] {
  return [...new Set(fields.flatMap((f) => [f, ...addressMirrors(f)]))];
}

/** A copy of `v` without `path`; paths go through lists (resolved.ip removes the ip of every resolved entry). */
function without(v: unknown, path: string[]): unknown {
  if (Array.isArray(v)) return v.map((x) => without(x, path));
  if (!v || typeof v !== 'object') return v;
  const r = v as Rec;
  const [head, ...rest] = path;
  if (!(head in r)) return r;
  const out = { ...r };
  if (rest.length === 0) delete out[head];
  else out[head] = without(out[head], rest);
  return out;
}

/** Removes the fields (and their mirrors) from records; the daemon applies it to queued packets too. */
export function compileRedact(fields: string[]): (r: Rec) => Rec {
  const paths = redactedFields(fields).map((f) => f.split('.'));
  return (r) => {
    let out: unknown = r;
    for (const path of paths) out = without(out, path);
    return out as Rec;
  };
}

export const redactFilter = defineFilter({
  name: 'redact',
  description:
    'remove fields from every record, through lists, with their mirrors (orig.src also removes reply.dst): redact(fields=[mark, uid])',
  params: z.object({ fields: FieldPaths.min(1) }).strict(),
  positional: (args) => ({ fields: args }),
  output: (input, p) => {
    const gone = redactedFields(p.fields);
    const out: FieldCatalog = new Map();
    for (const [k, v] of input) if (!gone.some((f) => k === f || k.startsWith(`${f}.`))) out.set(k, v);
    return out;
  },
  step: (p) => {
    const redact = compileRedact(p.fields);
    return (r, emit) => emit(redact(r));
  },
});
