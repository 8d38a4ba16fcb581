/** Argument parsers shared by every `flowgrab` subcommand: each rejects what it cannot use with a message that says what it wants. */
import { InvalidArgumentError } from 'commander';

/** A whole number ≥ 1 (`--count 0` would print nothing and look like a hang or a bug). */
export const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`${name} must be a whole number ≥ 1`);
  }
  return n;
};

/** A whole number ≥ 0, for values where 0 means something (a uid, a zone, a mark). */
export const wholeNumber = (name: string) => (v: string) => {
  const n = Number(v);
  if (!/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(v) || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`);
  }
  return n;
};

/** A duration in seconds, > 0. */
export const seconds = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('seconds must be a positive number');
  return n;
};

/** A comma-separated list whose items must come from `allowed`. */
export const listOf =
  <T extends string>(what: string, allowed: readonly T[]) =>
  (v: string): T[] => {
    const names = v.split(',').map((s) => s.trim());
    for (const n of names) {
      if (!(allowed as readonly string[]).includes(n)) {
        throw new InvalidArgumentError(`unknown ${what} "${n}" (${allowed.join(', ')})`);
      }
    }
    return names as T[];
  };
