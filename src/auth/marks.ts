/**
 * Per-principal NFQUEUE mark ranges. A claim `mark/mask` stands for every
 * packet mark x with (x & mask) == (mark & mask); a rule `m/k` likewise. A
 * claim is allowed when its set lies inside one rule's set: the claim fixes
 * every bit the rule fixes (k ⊆ mask) to the same value.
 *
 * Without a `marks` rule a principal may claim one exact mark at a time
 * (mask 0xffffffff): any wider mask takes packets other users may be
 * marking for themselves, and 0x0/0x0 would take every packet. Root may
 * claim anything.
 */
import type { Principal } from './policy.js';

const FULL = 0xffffffff;

export function parseMark(text: string): { mark: number; mask: number } {
  const [m, k] = text.split('/');
  return { mark: Number(m) >>> 0, mask: k === undefined ? FULL : Number(k) >>> 0 };
}

/** May this principal register mark/mask on the daemon's shared queue? */
export function markAllowed(p: Principal, mark: number, mask = FULL): boolean {
  const claimMark = mark >>> 0;
  const claimMask = mask >>> 0;
  if ('uid' in p.who && p.who.uid === 0 && !p.marks) return true;
  if (!p.marks) return claimMask === FULL;
  return p.marks.some((r) => {
    const rule = parseMark(r);
    return (rule.mask & claimMask) >>> 0 === rule.mask && ((claimMark ^ rule.mark) & rule.mask) >>> 0 === 0;
  });
}
