/**
 * enrich(): names the addresses of records from DNS answers seen by the
 * kernel (a dns() source on the same namespace feeding a DnsCache):
 * adds `names: {"orig.dst": ["cdn.shop.test", …]}`.
 */

import { isIP } from 'node:net';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { checkFields, FieldPaths, getPath, listOf } from '../params.js';
import { defineFilter, type Rec } from '../registry.js';
import type { Value } from '../spec.js';

export const enrichFilter = defineFilter({
  name: 'enrich',
  description: 'name addresses from DNS answers: enrich(fields=[orig.src, orig.dst], minTtl=300, trust=[192.168.1.53])',
  params: z
    .object({
      fields: FieldPaths.min(1).default(['orig.src', 'orig.dst']),
      minTtl: z.number().int().nonnegative().default(300),
      /**
       * DNS servers whose answers to devices asking them directly (seen passing through) name addresses too; the
       * answers of this machine's own resolver traffic always do (DnsCache).
       */
      trust: listOf(z.string().refine((a) => isIP(a) !== 0, 'an IP address'))
        .pipe(z.array(z.string()).max(64))
        .default([]),
    })
    .strict(),
  positional: (args): Record<string, Value> => (args.length ? { fields: args } : {}),
  // Feeds its cache from a DNS capture (nftables log rules) in the source's namespace, as dns() does.
  capabilities: () => ['firewall', 'capture-dns'],
  check: (p, ctx) => checkFields(p.fields, ctx.input, ctx.path, 'enrich'),
  output: (input) => new Map([...input, ['names', { kind: 'any', many: false }]]),
  create: (p, ctx) => (source) =>
    new Observable<Rec>((sub) => {
      const netns = ctx.source?.params.netns as string | undefined;
      const lease = ctx.dnsCache(netns, p.minTtl, p.trust);
      if (lease.ready) ctx.ready?.(lease.ready);
      const inner = source.subscribe({
        next: (r) => {
          const names: Record<string, string[]> = {};
          for (const f of p.fields) {
            const ip = getPath(r, f);
            if (typeof ip === 'string') {
              const n = lease.cache.names(ip);
              if (n.length) names[f] = n;
            }
          }
          sub.next({ ...r, names });
        },
        error: (e) => sub.error(e),
        complete: () => sub.complete(),
      });
      return () => {
        inner.unsubscribe();
        lease.release();
      };
    }),
});
