/**
 * nfqueue(options) → NfqueueSource: an Observable of queued packets, each
 * with its own verdict() method, which also takes verdicts by packet id
 * (verdict, verdictBatch) for code that routes packets, like the daemon's
 * multiplexer. The kernel allows one reader per queue and namespace, so
 * subscribers in this process share it; the first verdict for a packet
 * wins. The first subscriber binds the queue (and installs the rules); the
 * last one leaving gives every pending packet the default verdict, removes
 * the rules and unbinds.
 */
import { FlowgrabError } from '../../errors.js';
import { openNativeTransport } from '../../netlink/native.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Observable } from '../../rx.js';
import type { NoticeObserver } from '../notice.js';
import type { ReadyObserver } from '../ready.js';
import { signalReady } from '../ready.js';
import { SharedFeeds } from '../sharing.js';
import { trackTeardown } from '../teardown.js';
import { NfqueueFeed } from './feed.js';
import { type NfqueueConfig, type NfqueueOptionsInput, parseNfqueueOptions, type VerdictName } from './options.js';
import type { QueuedPacket, VerdictOptions } from './queued.js';

const teardowns = new Map<string, Promise<void>>();
/** The open feed of each key, for verdicts by id (the registry only hands feeds to subscribers). */
const live = new Map<string, NfqueueFeed>();
// The kernel lets one reader bind a queue per namespace: one config per queue.
const feeds = new SharedFeeds<NfqueueConfig, NfqueueFeed>({
  what: 'nfqueue',
  exclusive: (c) => `NFQUEUE queue ${c.queue} in ${c.netns ? `netns ${c.netns}` : 'this namespace'}`,
  open: (cfg, transport, key) => {
    const f = new NfqueueFeed(cfg, transport as TransportFactory, teardowns.get(key));
    live.set(key, f);
    return f;
  },
  dispose: (feed, key) => {
    if (live.get(key) === feed) live.delete(key);
    // Kept per key too: the next reader of this queue binds only after this one unbound.
    const p = trackTeardown(feed.close()).finally(() => {
      if (teardowns.get(key) === p) teardowns.delete(key);
    });
    teardowns.set(key, p);
  },
});

export function nfqueueFeedRefs(options: NfqueueOptionsInput): number {
  return feeds.refs(parseNfqueueOptions(options), options.transport);
}

export class NfqueueSource extends Observable<QueuedPacket> {
  readonly config: NfqueueConfig;
  private readonly key: string;

  constructor(cfg: NfqueueConfig, transport: TransportFactory, notices?: NoticeObserver, ready?: ReadyObserver) {
    const key = feeds.key(cfg, transport);
    super((sub) => {
      const lease = feeds.acquire(cfg, transport);
      const feed = lease.value;
      const pkts = feed.packets.subscribe(sub);
      const notes = notices ? feed.notices.subscribe((n) => notices.next(n)) : undefined;
      feed.ready.catch((err) => sub.error(err));
      // Capturing once the queue is bound (and its rules installed).
      signalReady(ready, feed.ready);
      return () => {
        pkts.unsubscribe();
        notes?.unsubscribe();
        lease.release();
      };
    });
    this.config = cfg;
    this.key = key;
  }

  /** Gives packet `packetId` its verdict; throws when it already has one or was never delivered. */
  verdict(packetId: number, verdict: VerdictName, opts?: VerdictOptions): void {
    this.feed('verdict').verdict(packetId, verdict, opts);
  }

  /** One verdict for every pending packet with an id ≤ `upTo` (VERDICT_BATCH); returns how many. */
  verdictBatch(upTo: number, verdict: VerdictName, opts?: VerdictOptions): number {
    return this.feed('verdictBatch').verdictBatch(upTo, verdict, opts);
  }

  /** Resolves once the queue is bound (and the rules installed) for the current subscribers; rejects with the setup error. */
  ready(): Promise<void> {
    try {
      return this.feed('ready').ready;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Packets delivered and still waiting for a verdict (0 when not subscribed). */
  get pending(): number {
    return this.lookup()?.pendingCount ?? 0;
  }

  private lookup(): NfqueueFeed | undefined {
    return live.get(this.key);
  }

  private feed(op: string): NfqueueFeed {
    const f = this.lookup();
    if (!f || JSON.stringify(f.cfg) !== JSON.stringify(this.config))
      throw new FlowgrabError('FG_ERR_INVALID_STATE', `${op}: NFQUEUE queue ${this.config.queue} is not subscribed`, {
        op: `nfqueue ${op}`,
      });
    return f;
  }
}

/** Bad options throw here, at once; nothing touches the kernel before subscribe. */
export function nfqueue(options: NfqueueOptionsInput): NfqueueSource {
  const cfg = parseNfqueueOptions(options);
  return new NfqueueSource(cfg, options.transport ?? openNativeTransport, options.notices, options.ready);
}
