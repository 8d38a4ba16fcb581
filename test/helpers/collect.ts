/** A source subscription that keeps what it emits, for tests: records, notices, errors and its readiness. */
import type { Observable } from 'rxjs';
import type { NoticeObserver, SourceNotice } from '../../src/sources/notice.js';
import type { ReadyObserver } from '../../src/sources/ready.js';

export interface Collected<T> {
  /** The records, as `show` gave them. */
  recs: T[];
  notices: SourceNotice[];
  errors: unknown[];
  /** Resolves once the subscription captures (the source's readiness signal). */
  ready: Promise<void>;
  unsubscribe(): void;
}

/** The hooks `collect` hands the source: they fill in `notices` and `ready`. */
export interface CollectHooks {
  notices: NoticeObserver;
  ready: ReadyObserver;
}

/**
 * Subscribes to the source `start` builds with `hooks` (spread them into
 * its options), keeping each record as `show` gives it (the record itself
 * by default), every notice and every error, until unsubscribed.
 */
export function collect<R, T = R>(
  start: (hooks: CollectHooks) => Observable<R>,
  show: (r: R) => T = (r) => r as unknown as T,
): Collected<T> {
  const c: Collected<T> = {
    recs: [],
    notices: [],
    errors: [],
    ready: Promise.reject(new Error('no readiness signal')),
    unsubscribe: () => {},
  };
  c.ready.catch(() => {});
  const sub = start({ notices: { next: (n) => c.notices.push(n) }, ready: (p) => (c.ready = p) }).subscribe({
    next: (r) => c.recs.push(show(r)),
    error: (e) => c.errors.push(e),
  });
  c.unsubscribe = () => sub.unsubscribe();
  return c;
}

/** A conntrack record in brief: `type:id`, then `:resync` when the resync inferred it. */
export const briefCt = (r: { type: string; id: number; resync?: boolean }): string =>
  `${r.type}:${r.id}${r.resync ? ':resync' : ''}`;
