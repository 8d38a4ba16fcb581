/**
 * The conntrack stream for a config already checked (source.ts checks the
 * options): the shared feeds and what each subscriber does (its dump, its
 * held events, readiness). No zod here, so the CLI's dump loads none.
 */

import { openNativeTransport } from '../../netlink/native.js';
import type { PayloadListener } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Observable } from '../../rx.js';
import { signalReady } from '../ready.js';
import { SharedFeeds } from '../sharing.js';
import { ConntrackFeed } from './feed.js';
import type { ConntrackConfig, ConntrackOptionsInput } from './options.js';
import type { ConntrackRecord } from './record.js';

// Event sockets are plain listeners (the kernel serves any number): each distinct config gets its own feed.
export const conntrackFeeds = new SharedFeeds<ConntrackConfig, ConntrackFeed>({
  what: 'conntrack',
  perSubscriber: ['dump', 'setEventsSysctl', 'setAccounting'],
  sets: ['events'],
  open: (cfg, transport) => new ConntrackFeed(cfg, transport as TransportFactory),
  dispose: (feed) => feed.close(),
});

/** The hooks of conntrack()'s options: notices, the transport and readiness. */
export type ConntrackHooks = Pick<ConntrackOptionsInput, 'notices' | 'transport' | 'ready'>;

/** conntrack() for a checked config (parseConntrackOptions or plainConntrackConfig). */
export function conntrackStream(cfg: ConntrackConfig, hooks: ConntrackHooks = {}): Observable<ConntrackRecord> {
  return new Observable<ConntrackRecord>((sub) => {
    const transport: TransportFactory = hooks.transport ?? openNativeTransport;
    const lease = conntrackFeeds.acquire(cfg, transport);
    const feed = lease.value;
    const following = cfg.events.length > 0 || cfg.pollIntervalMs > 0;
    // Events that arrive during our dump wait until it ends, so a DESTROY is never overtaken by its entry's dump record.
    let held: ConntrackRecord[] | null = cfg.dump ? [] : null;
    const recs = feed.records.subscribe({
      next: (r) => (held ? held.push(r) : sub.next(r)),
      error: (e) => sub.error(e),
    });
    const notes = hooks.notices ? feed.notices.subscribe((n) => hooks.notices?.next(n)) : undefined;
    try {
      feed.checkSysctls(cfg);
      // The feed joined its event groups when it opened (synchronously): events from now on are seen.
      signalReady(hooks.ready, Promise.resolve());
    } catch (err) {
      sub.error(err);
      signalReady(hooks.ready, Promise.reject(err));
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

/** A dump under way (conntrackDumpPayloads): its end, and a way to end it early. */
export interface DumpRun {
  done: Promise<void>;
  stop(): void;
}

/**
 * A dump alone (a config with no events and no polling), each entry's ctnetlink message handed to
 * `onPayload` undecoded, in place: what `flowgrab conntrack --dump --json` writes straight out. Notices and
 * the sysctl checks are conntrack()'s; an undecodable entry is a notice and the dump goes on.
 */
export function conntrackDumpPayloads(
  cfg: ConntrackConfig,
  hooks: ConntrackHooks,
  onPayload: PayloadListener,
): DumpRun {
  const feed = new ConntrackFeed(cfg, hooks.transport ?? openNativeTransport);
  const notes = hooks.notices ? feed.notices.subscribe((n) => hooks.notices?.next(n)) : undefined;
  const stop = () => {
    notes?.unsubscribe();
    feed.close();
  };
  const done = (async () => {
    try {
      feed.checkSysctls(cfg);
      await feed.dumpPayloads(onPayload);
    } finally {
      stop();
    }
  })();
  return { done, stop };
}
