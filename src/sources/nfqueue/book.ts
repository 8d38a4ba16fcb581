/**
 * Which queued packets still wait for a verdict. The kernel numbers packets
 * per queue, counting up (u32, wrapping) in delivery order, so pending ids
 * kept in arrival order are also in id order: a batch verdict "every id ≤ N"
 * and the timeout sweep both take a prefix. A gap in the ids is packets the
 * kernel could not hand us.
 */

/** True when id `a` comes after `b`, modulo 2^32 (the kernel's nfq_id_after). */
export const idAfter = (a: number, b: number): boolean => ((b - a) | 0) < 0;

import { AgedMap } from '../../util/aged-map.js';

export type TakeResult = 'pending' | 'decided' | 'unknown';

export class VerdictBook {
  /**
   * id → arrival time (ms), in arrival order. AgedMap, not Map: decided prefixes leave a Map's deleted slots at its
   * front, and each sweep from the front walked them again.
   */
  readonly pending = new AgedMap<number, number>();
  /**
   * Recently decided ids and how, to tell "already decided" from "never delivered". A Map evicted at its front cost
   * 15 µs per verdict once `memory` (65 536) verdicts were made.
   */
  private readonly decided = new AgedMap<number, string>();
  /** Highest id delivered so far (meaningful once `delivered`). */
  maxId = 0;
  delivered = false;
  /** Ids the kernel skipped: packets it could not queue to us. */
  gapLoss = 0;
  private expectId = 1;

  constructor(private readonly memory = 65536) {}

  /** Records a delivered packet; returns how many ids were skipped before it. */
  arrive(id: number, now: number): number {
    let gap = 0;
    if (!this.delivered || idAfter(id, this.expectId - 1)) {
      // A fresh queue numbers from 1: ids before our first packet were lost, unless the first one looks wrapped.
      gap = this.delivered || idAfter(id, 0) ? (id - this.expectId) >>> 0 : 0;
      this.expectId = (id + 1) >>> 0;
      this.maxId = id;
      this.delivered = true;
    }
    this.gapLoss += gap;
    this.pending.set(id, now);
    return gap;
  }

  /** Removes `id` from pending for a verdict; says why not when it cannot. */
  take(id: number, how: string): TakeResult {
    if (this.pending.delete(id)) {
      this.remember(id, how);
      return 'pending';
    }
    return this.decided.has(id) ? 'decided' : 'unknown';
  }

  howDecided(id: number): string | undefined {
    return this.decided.get(id);
  }

  /** Removes every pending id ≤ `upTo`; returns how many. */
  takeUpTo(upTo: number, how: string): number {
    let n = 0;
    for (const id of this.pending.keys()) {
      if (idAfter(id, upTo)) break;
      this.pending.delete(id);
      this.remember(id, how);
      n++;
    }
    return n;
  }

  /** The last id of the pending prefix that arrived at or before `cutoff`, or undefined. */
  expiredUpTo(cutoff: number): number | undefined {
    let last: number | undefined;
    for (const [id, at] of this.pending) {
      if (at > cutoff) break;
      last = id;
    }
    return last;
  }

  /** The newest pending id, or undefined when nothing waits. */
  lastPending(): number | undefined {
    return this.pending.newestKey();
  }

  /** True when `id` was never delivered (beyond the newest id seen). */
  beyond(id: number): boolean {
    return !this.delivered || idAfter(id, this.maxId);
  }

  private remember(id: number, how: string): void {
    this.decided.set(id, how);
    if (this.decided.size > this.memory) this.decided.shift();
  }
}
