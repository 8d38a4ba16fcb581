/** One DnsCache per namespace, fed by a shared dns() subscription while any enrich() filter uses it. */
import type { Subscription } from 'rxjs';
import { DnsCache } from '../sources/dns/cache.js';
import { dns } from '../sources/dns/source.js';
import { SharedRegistry } from '../sources/sharing.js';

interface Fed {
  cache: DnsCache;
  sub: Subscription;
}

const caches = new SharedRegistry<Fed>((f) => f.sub.unsubscribe());

export function sharedDnsCache(netns: string | undefined, minTtlS: number): { cache: DnsCache; release(): void } {
  const lease = caches.acquire(`${netns ?? ''}|${minTtlS}`, () => {
    const cache = new DnsCache({ minTtlS });
    const sub = dns({ netns }).subscribe({ next: (r) => cache.add(r), error: () => {} });
    return { cache, sub };
  });
  return { cache: lease.value.cache, release: lease.release };
}
