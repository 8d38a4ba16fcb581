/**
 * A copy of `s` in storage of its own, made now. A key kept in a long-lived table (an interner, a decision cache)
 * is compared with every lookup: kept as the record's own string it lies wherever that record was decoded, so
 * lookups over a large table touch scattered memory (one cache miss each), and a slice of a large decoded text
 * keeps the whole text alive. Copies made together lie together. (Concatenation makes a new string; slicing it
 * copies a short one and, for a long one, views the new flat concatenation.)
 */
export function ownString(s: string): string {
  return ` ${s}`.slice(1);
}
