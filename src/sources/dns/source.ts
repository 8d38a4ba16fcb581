/** dns(options) → Observable<DnsRecord>: DNS seen by the kernel, through NFLOG. */
import { openNativeTransport } from '../../netlink/native.js';
import { Observable } from '../../rx.js';
import { SharedRegistry, transportKey } from '../sharing.js';
import { DnsFeed } from './feed.js';
import { type DnsOptionsInput, dnsFeedKey, parseDnsOptions } from './options.js';
import type { DnsRecord } from './record.js';

const pendingTeardowns = new Set<Promise<void>>();
const keyFor = (options: DnsOptionsInput) =>
  `${dnsFeedKey(parseDnsOptions(options))}#${transportKey(options.transport ?? openNativeTransport)}`;
const feeds = new SharedRegistry<DnsFeed>((feed) => {
  const p = feed.close().finally(() => pendingTeardowns.delete(p));
  pendingTeardowns.add(p);
});

/** Resolves when every closed DNS feed has removed its firewall rules (teardown is asynchronous). */
export async function dnsTeardown(): Promise<void> {
  await Promise.allSettled([...pendingTeardowns]);
}

export function dnsFeedRefs(options: DnsOptionsInput = {}): number {
  return feeds.refs(keyFor(options));
}

/** Bad options throw here, at once. The first subscriber binds the group and installs the rules. */
export function dns(options: DnsOptionsInput = {}): Observable<DnsRecord> {
  const cfg = parseDnsOptions(options);
  return new Observable<DnsRecord>((sub) => {
    const lease = feeds.acquire(keyFor(options), () => new DnsFeed(cfg, options.transport ?? openNativeTransport));
    const feed = lease.value;
    const recs = feed.records.subscribe(sub);
    const notes = options.notices ? feed.notices.subscribe((n) => options.notices?.next(n)) : undefined;
    feed.ready.catch((err) => sub.error(err));
    return () => {
      recs.unsubscribe();
      notes?.unsubscribe();
      lease.release();
    };
  });
}
