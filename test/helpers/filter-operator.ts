/** A library filter as an rxjs operator, built the way a flow builds it, for tests of one filter. */
import type { SchedulerLike } from 'rxjs';
import '../../src/filters/builtin.js';
import { type BuildContext, filterOperator, lookupNode } from '../../src/filters/registry.js';
import { RECORD_FIELDS } from '../../src/filters/sources.js';
import { DnsCache } from '../../src/sources/dns/cache.js';

/**
 * The operator of filter `name` with `params` (parsed by its schema) on
 * conntrack records, timed by `scheduler`; `extra` overrides the build
 * context (notices, dropped, …).
 */
export function operator(
  name: string,
  params: Record<string, unknown>,
  scheduler: SchedulerLike,
  extra: Partial<BuildContext> = {},
) {
  const def = lookupNode(name);
  if (def?.kind !== 'filter') throw new Error(`no filter ${name}`);
  const ctx: BuildContext = {
    path: ['root'],
    input: RECORD_FIELDS.conntrack,
    scheduler,
    notices: { next: () => {} },
    dropped: () => {},
    dnsCache: () => ({ cache: new DnsCache(), release: () => {} }),
    ...extra,
  };
  return filterOperator(def, def.params.parse(params) as never, ctx);
}
