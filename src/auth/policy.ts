/**
 * The policy file (JSON, validated by zod; unknown keys are errors): who may
 * use which sources and filters, with parameter limits, FFPF ordering rules,
 * an address scope, redacted fields and resource limits.
 */
import { z } from 'zod';
import { CAPABILITIES } from '../filters/registry.js';
import { isPrefix } from '../netlink/prefix.js';

const Name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a source or filter name');
const Cidr = z.string().refine(isPrefix, 'an address prefix like 10.1.0.0/24 or fd00:1::/64');

/** Who a principal is: one user name, uid or group name. */
export const Who = z.union([
  z.object({ user: z.string().min(1) }).strict(),
  z.object({ uid: z.number().int().nonnegative() }).strict(),
  z.object({ group: z.string().min(1) }).strict(),
]);
/** Who a principal is (see the `Who` schema). */
export type Who = z.infer<typeof Who>;

/** A number, or a duration like "5s" (compared as milliseconds with the parameter's value). */
const Bound = z.union([z.number(), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'a number or a duration like 5s')]);

export const ParamLimit = z
  .object({
    max: Bound.optional(),
    min: Bound.optional(),
    oneOf: z.array(z.union([z.string(), z.number(), z.boolean()])).optional(),
  })
  .strict();

export const OrderRule = z.object({ filter: Name, requires: Name, position: z.enum(['before', 'after']) }).strict();
export type OrderRule = z.infer<typeof OrderRule>;

export const Limits = z
  .object({
    flows: z.number().int().positive().optional(),
    bufferRecords: z.number().int().positive().optional(),
    recordsPerSecond: z.number().positive().optional(),
  })
  .strict();

/** One principal of a policy: who, the sources, filters and capabilities granted, parameter bounds, order rules and limits. */
export const Principal = z
  .object({
    who: Who,
    sources: z.array(z.union([Name, z.literal('*')])).default([]),
    filters: z.array(z.union([Name, z.literal('*')])).default([]),
    /** "filter.param": limits, e.g. "sample.rate": {"max": 0.1}. */
    params: z.record(z.string().regex(/^[A-Za-z_]\w*\.[A-Za-z_]\w*$/, 'filter.param'), ParamLimit).default({}),
    order: z.array(OrderRule).default([]),
    /** Address prefixes this principal may see; absent = everything. */
    scope: z.array(Cidr).optional(),
    /** Field paths removed from every record before any filter sees it. */
    redact: z.array(z.string().regex(/^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/, 'a field path')).default([]),
    limits: Limits.default({}),
    /** NFQUEUE verdicts (the daemon's queue sharing and the nfqueue() source): the same as listing "verdicts" in capabilities. */
    verdicts: z.boolean().default(false),
    /** What nodes may do beyond reading records (registry.ts CAPABILITIES); "*" in sources/filters grants none. */
    capabilities: z.array(z.enum(CAPABILITIES)).default([]),
    /** NFQUEUE marks this principal may claim, "0x10/0xf0" or "0x10"; absent = any claim but the whole mark space (mask 0). */
    marks: z
      .array(
        z
          .string()
          .regex(/^(0x[0-9a-fA-F]{1,8}|\d{1,10})(\/(0x[0-9a-fA-F]{1,8}|\d{1,10}))?$/, 'a mark like 0x10 or 0x10/0xf0'),
      )
      .optional(),
  })
  .strict()
  // One right, two spellings: `"verdicts": true` and "verdicts" in capabilities mean the same, and both say so.
  .transform((p) => {
    const verdicts = p.verdicts || p.capabilities.includes('verdicts');
    const capabilities =
      verdicts && !p.capabilities.includes('verdicts') ? [...p.capabilities, 'verdicts' as const] : p.capabilities;
    return { ...p, verdicts, capabilities };
  });
/** One principal of a parsed policy (see the `Principal` schema). */
export type Principal = z.infer<typeof Principal>;

/** A policy file: `{version: 1, principals: [...]}`; the first principal that matches a client applies. */
export const Policy = z.object({ version: z.literal(1), principals: z.array(Principal) }).strict();
/** A parsed, checked policy. */
export type Policy = z.infer<typeof Policy>;
/** A policy as written (before defaults), e.g. for writing a policy file from code. */
export type PolicyInput = z.input<typeof Policy>;

/** Who is asking: from the kernel (SO_PEERCRED), never from the client. */
export interface Identity {
  uid: number;
  gid: number;
  user?: string;
  /** Names of every group the user is in (primary and supplementary). */
  groups?: string[];
}

/** The first principal in file order that names this identity, or undefined (denied). */
export function principalFor(policy: Policy, id: Identity): Principal | undefined {
  return policy.principals.find((p) => {
    const w = p.who;
    if ('uid' in w) return w.uid === id.uid;
    if ('user' in w) return id.user !== undefined && w.user === id.user;
    return id.groups?.includes(w.group) ?? false;
  });
}

/** Root may do anything, with no principal at all. */
export const ROOT_PRINCIPAL: Principal = Principal.parse({
  who: { uid: 0 },
  sources: ['*'],
  filters: ['*'],
  verdicts: true,
  capabilities: [...CAPABILITIES],
});
