/** Kept for the daemon's queue scope until it imports netlink/prefix.ts itself: the one prefix matcher. */
export { prefixMatcher as cidrMatcher } from '../../netlink/prefix.js';
