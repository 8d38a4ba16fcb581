/**
 * The dump/follow/resync engine shared by the table sources (conntrack,
 * arp): a table is dumped, then followed through kernel events. Work that
 * reads the table (resync dumps, link refreshes) runs one op at a time;
 * events arriving meanwhile are held and applied afterwards, in order, so
 * an event is never overtaken by an older view of its entry. Loss (the
 * kernel's drop counter, or a datagram we could not read) triggers a
 * resync; a failed resync is retried with backoff until one succeeds, so
 * a feed never stays out of sync.
 */
import { FlowgrabError } from '../errors.js';
import { readerGone } from '../netlink/fd-transport.js';
import { DropCounter, type NetlinkSocket } from '../netlink/socket.js';
import type { SourceNotice } from './notice.js';

export type FollowNotice = Omit<SourceNotice, 'source' | 'ts'>;

export interface FollowHost<E> {
  /** Names the source in errors ("arp", "conntrack"). */
  readonly source: string;
  /**
   * Applies one event. `mayStartOp` is false while draining before an op:
   * the host must not queue another op then. Returns false when the event
   * must wait (it is kept, with all that follows, until the next drain).
   */
  apply(e: E, mayStartOp: boolean): boolean;
  /** Held events to drop rather than apply (e.g. before the first dump, which covers them). */
  discardHeld?(): boolean;
  /** Re-dumps and reconciles after loss; resolves with the entry count (for the resync notice). */
  resync(held: readonly E[]): Promise<number>;
  /** Words for the resync notice: "`count` entries in the table". */
  resyncMessage(count: number): string;
  notice(n: FollowNotice): void;
  /** The event socket reads nothing more (netlink `readerGone`): the host ends its stream with `err`. */
  fail(err: Error): void;
}

export interface LossPolicy {
  /** How often the drop counter is read. */
  lossCheckMs: number;
  /** What a loss of `lost` events means: its notice, and whether a resync is needed. */
  describe(lost: number): { message: string; resync: boolean };
}

/** First retry of a failed resync after this long (or lossCheckMs, if longer), doubling up to RETRY_MAX_MS. */
export const RETRY_MIN_MS = 50;
export const RETRY_MAX_MS = 30_000;

export class Follower<E> {
  private chain: Promise<unknown> = Promise.resolve();
  /** Ops queued or running; events are held while non-zero. */
  private busy = 0;
  private held: E[] = [];
  private resyncQueued = false;
  private failures = 0;
  private retry?: NodeJS.Timeout;
  /** Stops the loss check (set by watch()). */
  private stopLossCheck?: () => void;
  private closed = false;
  /** The event socket watched, whose held-back datagrams an op takes first. */
  private socket?: NetlinkSocket;

  constructor(private readonly host: FollowHost<E>) {}

  /**
   * Watches `socket` for loss: unreadable datagrams, and its drop counter every `policy.lossCheckMs` while
   * datagrams arrive; a quiet socket wakes nothing until its next datagram (NetlinkSocket.whileActive). One
   * socket per follower.
   */
  watch(socket: NetlinkSocket, policy: LossPolicy): void {
    if (this.stopLossCheck) throw new Error(`${this.host.source}: a follower watches one socket`);
    this.socket = socket;
    const drops = new DropCounter(socket);
    this.stopLossCheck = socket.whileActive(policy.lossCheckMs, () => {
      if (this.closed) return;
      const lost = drops.take();
      if (lost === 0) return;
      const { message, resync } = policy.describe(lost);
      this.host.notice({ kind: 'loss', where: 'kernel', count: lost, message });
      if (resync) this.resync();
    });
    socket.onError((err) => {
      if (readerGone(err)) this.host.fail(err);
      else if ((err as { op?: string }).op === 'recvmsg') {
        this.host.notice({
          kind: 'loss',
          where: 'kernel',
          count: 1,
          message: `event socket: ${err.message}; resyncing`,
        });
        this.resync();
      } else {
        this.host.notice({ kind: 'warning', message: `event socket: ${err.message}` });
      }
    });
    this.retryBaseMs = Math.max(RETRY_MIN_MS, policy.lossCheckMs);
  }

  private retryBaseMs = RETRY_MIN_MS;

  /** True while an op is queued or running (events are being held). */
  get holding(): boolean {
    return this.busy > 0;
  }

  /** An event from the kernel: applied now, or held until the running ops are done. */
  event(e: E): void {
    if (this.closed) return;
    if (this.busy > 0 || !this.host.apply(e, true)) this.held.push(e);
  }

  /** Runs `fn` after every op queued before it; events are held meanwhile. */
  op<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    const run = this.chain.then(() => {
      if (this.closed) {
        throw new FlowgrabError('FG_ERR_CLOSED', `${this.host.source} source closed`, { op: this.host.source });
      }
      // Events read before the op starts are older than what it reads: the ones the socket holds back (a
      // batched reader giving the loop its turn: up to a ring of them) come out now, and go first with the rest
      // held. (A batch still with the receive worker, a millisecond's worth, races the dump as the kernel's queue
      // does.)
      this.socket?.deliverPending();
      this.drain(false);
      return fn();
    });
    const done = () => {
      if (--this.busy === 0 && !this.closed) this.drain(true);
    };
    // Nothing may wedge the queue: a later op runs whatever became of this one.
    this.chain = run.then(done, done).catch(() => {});
    return run;
  }

  /** After loss: one queued resync covers any further loss until it starts. Retried until it succeeds. */
  resync(): void {
    if (this.resyncQueued || this.closed) return;
    if (this.retry) {
      clearTimeout(this.retry);
      this.retry = undefined;
    }
    this.resyncQueued = true;
    this.op(() => {
      this.resyncQueued = false;
      return this.host.resync(this.held);
    }).then(
      (count) => {
        this.failures = 0;
        this.host.notice({ kind: 'resync', count, message: `resynchronised: ${this.host.resyncMessage(count)}` });
      },
      (err) => {
        if (this.closed) return;
        const wait = Math.min(RETRY_MAX_MS, this.retryBaseMs * 2 ** this.failures++);
        this.host.notice({
          kind: 'warning',
          message: `resync dump failed: ${(err as Error).message}; retrying in ${wait} ms`,
        });
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.resync();
        }, wait);
        this.retry.unref();
      },
    );
  }

  close(): void {
    this.closed = true;
    this.stopLossCheck?.();
    if (this.retry) clearTimeout(this.retry);
    this.held = [];
  }

  /**
   * Applies held events in order. Before an op they are older than what it
   * reads, so they go first (and nothing may start another op then).
   */
  private drain(mayStartOp: boolean): void {
    if (this.host.discardHeld?.()) {
      this.held = [];
      return;
    }
    const h = this.held;
    this.held = [];
    for (let i = 0; i < h.length; i++) {
      if (!this.host.apply(h[i], mayStartOp)) {
        this.held = h.slice(i).concat(this.held);
        return;
      }
    }
  }
}
