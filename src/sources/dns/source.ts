/** dns(options) → Observable<DnsRecord>: DNS seen by the kernel, through NFLOG. */
import { openNativeTransport } from '../../netlink/native.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Observable } from '../../rx.js';
import { signalReady } from '../ready.js';
import { SharedFeeds } from '../sharing.js';
import { trackTeardown } from '../teardown.js';
import { DnsFeed } from './feed.js';
import { type DnsConfig, type DnsOptionsInput, parseDnsOptions } from './options.js';
import type { DnsRecord } from './record.js';

// The kernel lets one reader bind an NFLOG group per namespace: one config per group.
const feeds = new SharedFeeds<DnsConfig, DnsFeed>({
  what: 'dns',
  sets: ['hooks'],
  exclusive: (c) => `NFLOG group ${c.group} in ${c.netns ? `netns ${c.netns}` : 'this namespace'}`,
  open: (cfg, transport) => new DnsFeed(cfg, transport as TransportFactory),
  dispose: (feed) => void trackTeardown(feed.close()),
});

export function dnsFeedRefs(options: DnsOptionsInput = {}): number {
  return feeds.refs(parseDnsOptions(options), options.transport);
}

/**
 * Bad options throw here, at once. The first subscriber binds the group and installs the rules; others
 * with the same config share them, and another config on the same group fails with FG_ERR_BUSY.
 */
export function dns(options: DnsOptionsInput = {}): Observable<DnsRecord> {
  const cfg = parseDnsOptions(options);
  return new Observable<DnsRecord>((sub) => {
    const lease = feeds.acquire(cfg, options.transport ?? openNativeTransport);
    const feed = lease.value;
    const recs = feed.records.subscribe(sub);
    const notes = options.notices ? feed.notices.subscribe((n) => options.notices?.next(n)) : undefined;
    feed.ready.catch((err) => sub.error(err));
    // Capturing once the group is bound and the logging rules are in place.
    signalReady(options.ready, feed.ready);
    return () => {
      recs.unsubscribe();
      notes?.unsubscribe();
      lease.release();
    };
  });
}
