/**
 * Per-principal NFQUEUE mark ranges, the one place that judges a claim on
 * flowgrabd's shared queue. A claim `mark/mask` stands for every packet mark
 * x with (x & mask) == (mark & mask); a rule `m/k` likewise. A claim is
 * allowed when its set lies inside one rule's set: the claim fixes every bit
 * the rule fixes (k ⊆ mask) to the same value.
 *
 * Without a `marks` rule a principal may claim any mark/mask except the
 * whole mark space (mask 0), which would take every packet and lock every
 * other client out; overlapping claims are refused by the queue itself.
 * Root's principal may claim anything.
 */
import type { Principal } from './policy.js';

const FULL = 0xffffffff;

export interface MarkClaim {
  mark: number;
  mask: number;
}

/** "0x10/0xf0", "0x10" (all 32 bits) or decimal, as numbers; undefined when malformed. */
export function parseMark(text: string): MarkClaim | undefined {
  const m = /^(0x[0-9a-f]{1,8}|\d{1,10})(?:\/(0x[0-9a-f]{1,8}|\d{1,10}))?$/i.exec(text.trim());
  if (!m) return undefined;
  const mark = Number(m[1]);
  const mask = m[2] === undefined ? FULL : Number(m[2]);
  if (mark > FULL || mask > FULL) return undefined;
  return { mark: (mark & mask) >>> 0, mask: mask >>> 0 };
}

export const formatMark = (mark: number, mask: number) =>
  mask >>> 0 === FULL
    ? `0x${(mark >>> 0).toString(16)}`
    : `0x${(mark >>> 0).toString(16)}/0x${(mask >>> 0).toString(16)}`;

/** True when every mark `inner` matches is also matched by `outer`. */
export const markInside = (inner: MarkClaim, outer: MarkClaim) =>
  (outer.mask & ~inner.mask) >>> 0 === 0 && ((inner.mark ^ outer.mark) & outer.mask) >>> 0 === 0;

const isRoot = (p: Principal, uid?: number) => uid === 0 || ('uid' in p.who && p.who.uid === 0);

/** Why this principal may not claim mark/mask on the daemon's shared queue, or undefined when it may. */
export function markRefusal(p: Principal, claim: MarkClaim, uid?: number): string | undefined {
  const c = { mark: claim.mark >>> 0, mask: claim.mask >>> 0 };
  if (!p.marks) {
    if (c.mask === 0 && !isRoot(p, uid))
      return `mark ${formatMark(c.mark, c.mask)} claims every packet: your policy grants no such range`;
    return undefined;
  }
  for (const text of p.marks) {
    const r = parseMark(text);
    if (r && markInside(c, r)) return undefined;
  }
  return `mark ${formatMark(c.mark, c.mask)} is outside your mark ranges (${p.marks.join(', ') || 'none'})`;
}

/** May this principal claim mark/mask on the daemon's shared queue? */
export const markAllowed = (p: Principal, mark: number, mask = FULL, uid?: number): boolean =>
  markRefusal(p, { mark, mask }, uid) === undefined;
