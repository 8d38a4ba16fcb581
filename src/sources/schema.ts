/**
 * Building blocks for the one zod schema each source declares for its
 * options (src/sources/<name>/options.ts): the schema gives the config type
 * (z.infer), the defaults, the validation and the graph node's params.
 * Messages say what was expected and what came, as before zod; every issue
 * is reported at once, with its path.
 */
import { z } from 'zod';
import { FlowgrabError } from '../errors.js';

const show = (v: unknown) => JSON.stringify(v);

/** An integer from `min` to `max`. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined
      ? `required, an integer from ${min} to ${max}`
      : `expected an integer from ${min} to ${max}, got ${show(iss.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

export const bool = () => z.boolean({ error: (iss) => `expected true or false, got ${show(iss.input)}` });

export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => `expected one of ${values.join(', ')}, got ${show(iss.input)}` });

export const listOf = <T extends z.ZodType>(item: T) =>
  z.array(item, { error: (iss) => `expected a list, got ${show(iss.input)}` });

/** What `ip netns` names a namespace with (here: no path, nothing a shell would read). */
export const NETNS_NAME = /^[A-Za-z0-9_.-]+$/;

export const netnsName = () =>
  z.string({ error: (iss) => `expected a network namespace name, got ${show(iss.input)}` }).regex(NETNS_NAME, {
    error: (iss) => `expected a network namespace name (letters, digits, _ . -), got ${show(iss.input)}`,
  });

/** One sentence per issue: "path: what is wrong"; unknown keys each as "key: unknown option". */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const iss of issues) {
    const at = iss.path.map(String).join('.');
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) out.push(`${at ? `${at}.` : ''}${k}: unknown option`);
    } else {
      out.push(`${at}: ${iss.message}`);
    }
  }
  return [...new Set(out)];
}

/**
 * What a source's options object carries beside its options: where notices
 * go, the kernel seam (tests) and the readiness observer. Not options, so
 * the schema never sees them.
 */
const HOOKS: ReadonlySet<string> = new Set(['notices', 'transport', 'ready']);

/**
 * Parses a source's options (what: "conntrack") with its schema: the hooks
 * (notices, transport, ready) are left out, undefined values count as
 * absent, defaults are filled in, and every issue goes into one
 * FG_ERR_INVALID_ARGUMENT.
 */
export function parseOptions<S extends z.ZodType>(what: string, schema: S, input: object | undefined): z.output<S> {
  const present = Object.fromEntries(Object.entries(input ?? {}).filter(([k, v]) => v !== undefined && !HOOKS.has(k)));
  const r = schema.safeParse(present);
  if (r.success) return r.data;
  const msg = `${what} options: ${describeIssues(r.error.issues).join('; ')}`;
  throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', msg, { op: what });
}
