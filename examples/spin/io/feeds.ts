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
  /** A flow's records ended with an error (flowgrabd gone, with every flow of the connection). */
  onEnd?: (err: Error) => void;
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
      error: (err) => {
        core.log(`${name} ended: ${(err as Error).message}`);
        opts.onEnd?.(err as Error);
      },
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

/** Back-off between attempts to open the feeds again: from the first to the longest. */
export const REOPEN_MS = { first: 1000, max: 30_000 } as const;

/**
 * The feeds, opened again whenever one ends with an error: through flowgrabd, its restart closes the connection
 * and every flow with it, and the name lists stopped following DNS for good. `make` gives a fresh source
 * (a new connection) each time; attempts back off from REOPEN_MS.first to REOPEN_MS.max. The first opening's
 * failure goes to the caller. Returns what closes them for good.
 */
export async function reopeningFeeds(
  make: () => Promise<FlowSource & { close(): Promise<void> }>,
  core: Core,
  opts: Omit<FeedOptions, 'onEnd'>,
): Promise<() => Promise<void>> {
  let closed = false;
  /** Closes the feeds open now. */
  let current: (() => Promise<void>) | undefined;
  /** The opening under way (the first, or a reopening), which close() waits for. */
  let opening: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let backoff: number = REOPEN_MS.first;
  /** A loss is acted on once the feeds it concerns are the ones open; one while they open waits for that. */
  let live = false;
  let lostWhileOpening = false;
  const open = async () => {
    const fg = await make();
    try {
      const closeFeeds = await openFeeds(fg, core, { ...opts, onEnd: () => lost() });
      current = async () => {
        await closeFeeds();
        await fg.close();
      };
    } catch (err) {
      await fg.close().catch(() => undefined);
      throw err;
    }
  };
  const attempt = () => {
    timer = undefined;
    if (closed) return;
    lostWhileOpening = false; // what the last attempt's feeds said on their way down is no news
    opening = open().then(
      () => {
        backoff = REOPEN_MS.first;
        core.log('feeds: open again');
        goLive();
      },
      (err: Error) => {
        core.log(`feeds: ${err.message}; trying again in ${backoff / 1000} s`);
        if (!closed) timer = setTimeout(attempt, backoff);
        backoff = Math.min(backoff * 2, REOPEN_MS.max);
      },
    );
  };
  const goLive = () => {
    live = true;
    if (lostWhileOpening) {
      lostWhileOpening = false;
      lost();
    }
  };
  const lost = () => {
    if (closed) return;
    if (!live) {
      lostWhileOpening = true;
      return;
    }
    live = false;
    const old = current;
    current = undefined;
    void old?.().catch(() => undefined);
    timer = setTimeout(attempt, backoff);
  };
  try {
    opening = open();
    await opening;
    goLive();
  } catch (err) {
    closed = true;
    throw err;
  }
  return async () => {
    closed = true;
    if (timer) clearTimeout(timer);
    await opening?.catch(() => undefined);
    await current?.();
    current = undefined;
  };
}
