/**
 * conntrack(options) → Observable<ConntrackRecord>: an optional dump of the
 * table, then the selected kernel events. Subscribers with the same config
 * share one event socket (reference counted; stream.ts).
 */

import type { Observable } from '../../rx.js';
import { type ConntrackOptionsInput, parseConntrackOptions } from './options.js';
import type { ConntrackRecord } from './record.js';
import { conntrackFeeds, conntrackStream } from './stream.js';

/** How many subscribers share the feed for these options (0 when none is open): for tests and stats. */
export function conntrackFeedRefs(options: ConntrackOptionsInput = {}): number {
  return conntrackFeeds.refs(parseConntrackOptions(options), options.transport);
}

/** Bad options throw here, at once, rather than on subscribe. */
export function conntrack(options: ConntrackOptionsInput = {}): Observable<ConntrackRecord> {
  return conntrackStream(parseConntrackOptions(options), options);
}
