/**
 * Loss accounting for one queue, never silent and never fatal. Packets the
 * kernel could not hand us show twice, as id gaps and in the socket's drop
 * counter (whichever is seen first counts); queue-full drops without
 * fail-open show only in /proc; queue-full with fail-open shows nowhere, so
 * reaching maxLen pending packets is itself reported.
 */
import type { SourceNotice } from '../notice.js';
import type { NfqueueConfig } from './options.js';
import { readQueueStats } from './proc.js';

type Notify = (n: Omit<SourceNotice, 'source' | 'ts'>) => void;

export class LossMeter {
  private reported = 0;
  private queueDropped = 0;
  private full = false;

  constructor(
    private readonly cfg: NfqueueConfig,
    private readonly where: string,
    private readonly notify: Notify,
    private readonly drops: () => number,
    private readonly port: number,
  ) {}

  /** `gapLoss`: ids skipped so far. */
  check(gapLoss: number): void {
    let drops = 0;
    try {
      drops = this.drops();
    } catch {
      // the socket closed under us
    }
    const known = Math.max(gapLoss, drops);
    if (known > this.reported) {
      const n = known - this.reported;
      this.reported = known;
      this.notify({
        kind: 'loss',
        where: 'kernel',
        count: n,
        message: `${n} packet(s) on ${this.where} never reached flowgrab (socket buffer full): ${this.cfg.failOpen ? 'accepted without a verdict (fail-open)' : 'dropped by the kernel'}`,
      });
    }
    const stats = this.cfg.failOpen ? undefined : readQueueStats(this.cfg.queue, this.port, this.cfg.netns);
    if (stats && stats.dropped > this.queueDropped) {
      const n = stats.dropped - this.queueDropped;
      this.queueDropped = stats.dropped;
      this.notify({
        kind: 'loss',
        where: 'kernel',
        count: n,
        message: `${n} packet(s) dropped: ${this.where} was full (maxLen ${this.cfg.maxLen})`,
      });
    }
  }

  /** Once maxLen packets wait, further ones bypass us (fail-open) or are dropped: said once per episode. */
  checkFull(pending: number): void {
    if (!this.full && pending >= this.cfg.maxLen) {
      this.full = true;
      this.notify({
        kind: 'warning',
        message: `${this.where} is full (${pending} packets wait for verdicts): further packets ${this.cfg.failOpen ? 'pass without a verdict (fail-open)' : 'are dropped'}`,
      });
    } else if (this.full && pending < this.cfg.maxLen >> 1) this.full = false;
  }
}
