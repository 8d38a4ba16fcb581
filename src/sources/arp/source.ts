/**
 * arp(options) → Observable<NeighRecord>: the kernel's neighbour table (ARP
 * and NDP), optionally followed by its changes. Subscribers with the same
 * config share one feed (event socket, dump socket, tables).
 */
import { openNativeTransport } from '../../netlink/native.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Observable } from '../../rx.js';
import { signalReady } from '../ready.js';
import { SharedFeeds } from '../sharing.js';
import { ArpFeed } from './feed.js';
import { type ArpConfig, type ArpOptionsInput, parseArpOptions } from './options.js';
import type { NeighRecord } from './record.js';

// rtnetlink listeners are not exclusive: each distinct config gets its own feed; `dump` is per subscriber.
const feeds = new SharedFeeds<ArpConfig, ArpFeed>({
  what: 'arp',
  perSubscriber: ['dump'],
  open: (cfg, transport) => new ArpFeed(cfg, transport as TransportFactory),
  dispose: (feed) => feed.close(),
});

/** How many subscribers share the feed for these options (0 when none is open): for tests and stats. */
export function arpFeedRefs(options: ArpOptionsInput = {}): number {
  return feeds.refs(parseArpOptions(options), options.transport);
}

/**
 * Bad options throw here, at once, rather than on subscribe. Defaults: a
 * dump of usable IPv4 and IPv6 neighbours, then completion; `events: true`
 * follows changes (after the dump unless `dump: false`).
 */
export function arp(options: ArpOptionsInput = {}): Observable<NeighRecord> {
  const cfg = parseArpOptions(options);
  return new Observable<NeighRecord>((sub) => {
    const lease = feeds.acquire(cfg, options.transport ?? openNativeTransport);
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
    // The groups were joined when the feed opened. A dump covers what changes while it runs (events then are
    // held); without one, events before the feed has learnt the table are dropped: capturing once it has.
    signalReady(options.ready, cfg.dump ? Promise.resolve() : started.then(() => undefined));
    return () => {
      recs.unsubscribe();
      notes?.unsubscribe();
      lease.release();
    };
  });
}
