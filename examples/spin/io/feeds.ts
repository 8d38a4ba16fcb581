/**
 * The three flow graphs that feed the SPIN core, through flowgrab's public
 * API, in-process or through flowgrabd: conntrack with counter deltas from
 * polling (the kernel's counters are never zeroed), DNS through NFLOG, and
 * the neighbour table with events.
 */

import type { ConntrackRecord, DnsRecord, LossNotice, NeighRecord } from 'flowgrab';
import { dnsTableName, runTool } from 'flowgrab';
import type { Observable } from 'rxjs';
import type { Core } from '../core.js';

/** What both the local Flowgrab and the daemon client offer. */
export interface FlowSource {
  create(opts: { name?: string; bufferRecords?: number; overflow?: 'drop-oldest' | 'drop-newest' }): FlowLike;
}
interface FlowLike {
  populate(graph: string): unknown;
  instantiate(): Promise<void>;
  activate(): Promise<void>;
  close(): Promise<void>;
  readonly records$: Observable<Record<string, unknown>>;
  readonly lost$: Observable<LossNotice>;
}

export interface FeedOptions {
  netns?: string;
  /** NFLOG group of the DNS rules (one reader per group and namespace). */
  dnsGroup?: number;
  pollMs: number;
}

export async function openFeeds(fg: FlowSource, core: Core, opts: FeedOptions): Promise<() => Promise<void>> {
  const ns = opts.netns ? `, netns=${opts.netns}` : '';
  const graphs: [string, string, (r: Record<string, unknown>) => void][] = [
    [
      'spin-conntrack',
      `conntrack(events=[new, destroy], dump=true, poll=${Math.max(1, opts.pollMs)}ms${ns})`,
      (r) => core.onConntrack(r as unknown as ConntrackRecord),
    ],
    ['spin-dns', `dns(group=${opts.dnsGroup ?? 53}${ns})`, (r) => core.onDns(r as unknown as DnsRecord)],
    ['spin-arp', `arp(dump=true, events=true${ns})`, (r) => core.onNeigh(r as unknown as NeighRecord)],
  ];
  const flows: FlowLike[] = [];
  const close = async () => {
    await Promise.allSettled(flows.map((f) => f.close()));
  };
  try {
    for (const [name, text, sink] of graphs) {
      const f = fg.create({ name, bufferRecords: 100_000, overflow: 'drop-oldest' });
      flows.push(f);
      f.populate(text);
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
    }
    // ARP first: devices exist before the first counted traffic names them.
    for (const f of [...flows].reverse()) await f.activate();
    await dnsRulesReady(opts);
  } catch (err) {
    await close();
    throw err;
  }
  return close;
}

/** The DNS source installs its logging rules after activation: wait (bounded) so "started" means "capturing". */
async function dnsRulesReady(opts: FeedOptions): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const r = await runTool(['nft', 'list', 'table', 'inet', dnsTableName(opts.dnsGroup ?? 53)], {
      netns: opts.netns,
      allowFail: true,
    });
    if (r.code === 0) return;
    await new Promise((res) => setTimeout(res, 25));
  }
}
