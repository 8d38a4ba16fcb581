/**
 * The three flow graphs that feed the SPIN core, through flowgrab's public
 * API, in-process or through flowgrabd: conntrack with counter deltas from
 * polling (the kernel's counters are never zeroed), DNS through NFLOG, and
 * the neighbour table with events.
 */

import type { ConntrackRecord, DnsRecord, FlowgrabLike, FlowHandleLike, NeighRecord } from 'flowgrab';
import type { Core } from '../core.js';

/** What both the local Flowgrab and the daemon client offer. */
export type FlowSource = FlowgrabLike;

export interface FeedOptions {
  netns?: string;
  /** NFLOG group of the DNS rules (one reader per group and namespace). */
  dnsGroup?: number;
  pollMs: number;
}

/**
 * Opens the three flows and activates them. activate() resolves only once
 * each source captures (the DNS logging rules installed, the groups joined),
 * so "started" means "capturing".
 */
export async function openFeeds(fg: FlowSource, core: Core, opts: FeedOptions): Promise<() => Promise<void>> {
  const ns = opts.netns ? `, netns=${opts.netns}` : '';
  const flows: FlowHandleLike<object>[] = [];
  const close = async () => {
    await Promise.allSettled(flows.map((f) => f.close()));
  };
  const open = async <R extends object>(name: string, text: string, sink: (r: R) => void): Promise<void> => {
    const f = fg.create<R>({ name, bufferRecords: 100_000, overflow: 'drop-oldest' });
    flows.push(f);
    f.populate<R>(text);
    await f.instantiate();
    f.records$.subscribe({
      next: (r) => {
        try {
          sink(r);
        } catch (err) {
          core.log(`${name}: ${(err as Error).message}`);
        }
      },
      error: (err) => core.log(`${name} ended: ${(err as Error).message}`),
    });
    f.lost$.subscribe((n) => core.log(`${name}: lost ${n.count ?? ''} (${n.where ?? n.kind}): ${n.message}`));
  };
  try {
    await open<ConntrackRecord>(
      'spin-conntrack',
      `conntrack(events=[new, destroy], dump=true, poll=${Math.max(1, opts.pollMs)}ms${ns})`,
      (r) => core.onConntrack(r),
    );
    await open<DnsRecord>('spin-dns', `dns(group=${opts.dnsGroup ?? 53}${ns})`, (r) => core.onDns(r));
    await open<NeighRecord>('spin-arp', `arp(dump=true, events=true${ns})`, (r) => core.onNeigh(r));
    // ARP first: devices exist before the first counted traffic names them.
    for (const f of [...flows].reverse()) await f.activate();
  } catch (err) {
    await close();
    throw err;
  }
  return close;
}
