/**
 * conntrack(options) → Observable<ConntrackRecord>: an optional dump of the
 * table, then the selected kernel events. Subscribers with the same config
 * share one event socket (reference counted).
 */

import { openNativeTransport } from '../../netlink/native.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Observable } from '../../rx.js';
import { signalReady } from '../ready.js';
import { SharedFeeds } from '../sharing.js';
import { ConntrackFeed } from './feed.js';
import { type ConntrackConfig, type ConntrackOptionsInput, parseConntrackOptions } from './options.js';
import type { ConntrackRecord } from './record.js';

// Event sockets are plain listeners (the kernel serves any number): each distinct config gets its own feed.
const feeds = new SharedFeeds<ConntrackConfig, ConntrackFeed>({
  what: 'conntrack',
  perSubscriber: ['dump', 'setEventsSysctl', 'setAccounting'],
  sets: ['events'],
  open: (cfg, transport) => new ConntrackFeed(cfg, transport as TransportFactory),
  dispose: (feed) => feed.close(),
});

/** How many subscribers share the feed for these options (0 when none is open): for tests and stats. */
export function conntrackFeedRefs(options: ConntrackOptionsInput = {}): number {
  return feeds.refs(parseConntrackOptions(options), options.transport);
}

/** Bad options throw here, at once, rather than on subscribe. */
export function conntrack(options: ConntrackOptionsInput = {}): Observable<ConntrackRecord> {
  const cfg = parseConntrackOptions(options);
  return new Observable<ConntrackRecord>((sub) => {
    const transport: TransportFactory = options.transport ?? openNativeTransport;
    const lease = feeds.acquire(cfg, transport);
    const feed = lease.value;
    const following = cfg.events.length > 0 || cfg.pollIntervalMs > 0;
    // Events that arrive during our dump wait until it ends, so a DESTROY is never overtaken by its entry's dump record.
    let held: ConntrackRecord[] | null = cfg.dump ? [] : null;
    const recs = feed.records.subscribe({
      next: (r) => (held ? held.push(r) : sub.next(r)),
      error: (e) => sub.error(e),
    });
    const notes = options.notices ? feed.notices.subscribe((n) => options.notices?.next(n)) : undefined;
    try {
      feed.checkSysctls(cfg);
      // The feed joined its event groups when it opened (synchronously): events from now on are seen.
      signalReady(options.ready, Promise.resolve());
    } catch (err) {
      sub.error(err);
      signalReady(options.ready, Promise.reject(err));
    }
    if (cfg.dump) {
      feed
        .dump((r) => sub.next(r))
        .then(
          () => {
            const h = held ?? [];
            held = null;
            for (const r of h) sub.next(r);
            if (!following) sub.complete();
          },
          (err) => sub.error(err),
        );
    } else if (!following) {
      sub.complete();
    }
    return () => {
      recs.unsubscribe();
      notes?.unsubscribe();
      lease.release();
    };
  });
}
