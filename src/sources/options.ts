/**
 * Hand-made option checks, still used by nfqueue (its rules check calls
 * the iptables argument validator). conntrack, arp and dns declare their
 * options as zod schemas (schema.ts); nfqueue is to follow.
 */
import { FlowgrabError } from '../errors.js';

/** A check returns a sentence saying what is wrong, or undefined. */
export type Check = (v: unknown, path: string, issues: string[]) => void;

export const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v, path, issues) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      issues.push(`${path}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  };

export const bool: Check = (v, path, issues) => {
  if (typeof v !== 'boolean') issues.push(`${path}: expected true or false, got ${JSON.stringify(v)}`);
};

export const oneOf =
  (...allowed: string[]): Check =>
  (v, path, issues) => {
    if (typeof v !== 'string' || !allowed.includes(v)) {
      issues.push(`${path}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    }
  };

export const pattern =
  (re: RegExp, what: string): Check =>
  (v, path, issues) => {
    if (typeof v !== 'string' || !re.test(v)) issues.push(`${path}: expected ${what}, got ${JSON.stringify(v)}`);
  };

export const listOf =
  (item: Check): Check =>
  (v, path, issues) => {
    if (!Array.isArray(v)) {
      issues.push(`${path}: expected a list, got ${JSON.stringify(v)}`);
      return;
    }
    v.forEach((x, i) => {
      item(x, `${path}.${i}`, issues);
    });
  };

export const NETNS_NAME = pattern(/^[A-Za-z0-9_.-]+$/, 'a network namespace name (letters, digits, _ . -)');

/**
 * Checks `input` against `spec`, fills in `defaults`, and throws one
 * FG_ERR_INVALID_ARGUMENT listing every issue. Unknown keys are errors.
 */
export function validateOptions<T extends object>(
  what: string,
  input: Record<string, unknown>,
  spec: Record<string, Check>,
  defaults: Partial<T>,
): T {
  const issues: string[] = [];
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue;
    const check = spec[k];
    if (!check) issues.push(`${k}: unknown option`);
    else check(v, k, issues);
  }
  if (issues.length > 0) {
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `${what} options: ${issues.join('; ')}`, { op: what });
  }
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) out[k] = v;
  return out as T;
}
