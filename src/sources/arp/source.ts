/**
 * arp(options) → Observable<NeighRecord>: the kernel's neighbour table (ARP
 * and NDP), optionally followed by its changes. Subscribers with the same
 * config share one feed (event socket, dump socket, tables).
 */
import { openNativeTransport } from '../../netlink/native.js';
import { Observable } from '../../rx.js';
import { SharedRegistry, transportKey } from '../sharing.js';
import { ArpFeed } from './feed.js';
import { type ArpConfig, type ArpOptionsInput, arpFeedKey, parseArpOptions } from './options.js';
import type { NeighRecord } from './record.js';

const feeds = new SharedRegistry<ArpFeed>((feed) => feed.close());

function feedKey(options: ArpOptionsInput, cfg: ArpConfig): string {
  return `${arpFeedKey(cfg)}#${transportKey(options.transport ?? openNativeTransport)}`;
}

/** How many subscribers share the feed for these options (0 when none is open): for tests and stats. */
export function arpFeedRefs(options: ArpOptionsInput = {}): number {
  return feeds.refs(feedKey(options, parseArpOptions(options)));
}

/**
 * Bad options throw here, at once, rather than on subscribe. Defaults: a
 * dump of usable IPv4 and IPv6 neighbours, then completion; `events: true`
 * follows changes (after the dump unless `dump: false`).
 */
export function arp(options: ArpOptionsInput = {}): Observable<NeighRecord> {
  const cfg = parseArpOptions(options);
  const key = feedKey(options, cfg);
  return new Observable<NeighRecord>((sub) => {
    const lease = feeds.acquire(key, () => new ArpFeed(cfg, options.transport ?? openNativeTransport));
    const feed = lease.value;
    // What the feed emits before our dump is done (held events, its reconciliation for other
    // followers) is already in the dump; events held during the dump come after it.
    let dumping = cfg.dump;
    const recs = feed.records.subscribe({
      next: (r) => {
        if (!dumping) sub.next(r);
      },
      error: (e) => sub.error(e),
    });
    const notes = options.notices ? feed.notices.subscribe((n) => options.notices?.next(n)) : undefined;
    const dumped = () => {
      dumping = false;
    };
    const started = cfg.dump ? feed.dump((r) => sub.next(r), dumped) : feed.prime();
    started.then(
      () => {
        if (!cfg.events) sub.complete();
      },
      (err) => sub.error(err),
    );
    return () => {
      recs.unsubscribe();
      notes?.unsubscribe();
      lease.release();
    };
  });
}
