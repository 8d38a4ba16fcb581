/**
 * The core's lists and blocks in the kernel: the nft table (io/firewall.ts)
 * applied after every change (once per JSON-RPC batch, io/batch.ts), the
 * connections a new block cuts, and coalesced updates when nodes of blocked
 * pairs gain addresses.
 */
import { deleteConntrack } from 'flowgrab';
import type { Enforcement, NameList } from './domain/blocks.js';
import type { Drop } from './domain/traffic.js';
import { deferredInBatch, runBatch } from './io/batch.js';
import { Firewall } from './io/firewall.js';

export interface EnforcerOptions {
  /** What to enforce now (the core's lists and blocks). */
  state: () => Enforcement;
  /** Is traffic between these addresses blocked now (for cutting existing connections)? */
  blockedBetween: (a: string, b: string) => boolean;
  hasBlocks: () => boolean;
  /** A failed firewall update (counted and logged by the core). */
  onError: (err: unknown) => void;
  log: (line: string) => void;
  netns?: string;
  tableName?: string;
}

export class Enforcer {
  private readonly firewall: Firewall;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private cutQueued: Promise<void> | undefined;

  constructor(private readonly o: EnforcerOptions) {
    this.firewall = new Firewall(o.state, { netns: o.netns, name: o.tableName });
  }

  /** Applies the state as it is now, whatever a batch is doing (start-up). */
  apply(): Promise<void> {
    return this.firewall.apply();
  }

  /**
   * Runs a JSON-RPC batch: every change it makes reaches the kernel in one
   * nft transaction at its end (not one rebuild per call).
   */
  inBatch<T>(run: () => Promise<T>): Promise<T> {
    return runBatch(run, () => this.enforce().catch((err) => this.o.onError(err)));
  }

  /** Applies the current lists and blocks to the kernel, then cuts connections they now block. */
  async enforce(): Promise<void> {
    if (deferredInBatch()) return;
    await this.firewall.apply();
    await this.cutBlocked();
  }

  /** Coalesces firewall updates caused by nodes of blocked pairs gaining addresses. */
  schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.enforce().catch((err) => this.o.onError(err));
    }, 20);
    this.timer.unref();
  }

  /**
   * A listed name's new address joins its set in the kernel (a block also cuts its connections). Addresses
   * that come together share one nft update and one pass over the connections.
   */
  nameAddress(list: NameList, ip: string, exp: number): void {
    this.firewall.nameAddress(list, ip, exp).then(
      () => (list === 'block' ? this.cutSoon() : undefined),
      (err) => this.o.onError(err),
    );
  }

  /** Packets dropped since the last call. */
  drops(): Promise<Drop[]> {
    return this.firewall.drops();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.firewall.close();
  }

  /** One cut for every caller until it starts: later callers after that get the next one. */
  private cutSoon(): Promise<void> {
    this.cutQueued ??= Promise.resolve().then(() => {
      this.cutQueued = undefined;
      return this.cutBlocked();
    });
    return this.cutQueued;
  }

  private async cutBlocked(): Promise<void> {
    if (!this.o.hasBlocks()) return;
    try {
      await deleteConntrack((r) => this.o.blockedBetween(r.orig.src, r.orig.dst), { netns: this.o.netns });
    } catch (err) {
      this.o.log(`conntrack delete: ${(err as Error).message}`);
    }
  }
}
