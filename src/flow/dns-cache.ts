/** One DnsCache per namespace, fed by a shared dns() subscription while any enrich() filter uses it. */
import type { Subscription } from 'rxjs';
import type { DnsCacheLease } from '../filters/registry.js';
import { canonicalIP } from '../netlink/ip.js';
import { DnsCache } from '../sources/dns/cache.js';
import { dns } from '../sources/dns/source.js';
import { SharedRegistry } from '../sources/sharing.js';

interface Fed {
  cache: DnsCache;
  sub: Subscription;
  /** The dns() subscription captures: NFLOG bound, rules installed. */
  ready?: Promise<void>;
}

const caches = new SharedRegistry<Fed>((f) => f.sub.unsubscribe());

export function sharedDnsCache(
  netns: string | undefined,
  minTtlS: number,
  trustedServers: readonly string[] = [],
): DnsCacheLease {
  // One spelling per server: two spellings of one would open two captures.
  const trusted = [...new Set(trustedServers.map((a) => canonicalIP(a) ?? a))].sort();
  const lease = caches.acquire(`${netns ?? ''}|${minTtlS}|${trusted.join(',')}`, () => {
    const cache = new DnsCache({ minTtlS, trustedServers: trusted });
    let ready: Promise<void> | undefined;
    const sub = dns({ netns, ready: (p) => (ready = p) }).subscribe({ next: (r) => cache.add(r), error: () => {} });
    return { cache, sub, ready };
  });
  return { cache: lease.value.cache, release: lease.release, ready: lease.value.ready };
}
