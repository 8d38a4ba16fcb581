/** What a flowgrabd is started with (the `flowgrabd` command builds it from its flags). */
import type { Policy } from '../auth/policy.js';
import type { LogFn } from './host.js';
import type { ConnectionTimeouts } from './limits.js';
import type { PeerMethod } from './peer.js';
import type { QueueConfig } from './queue.js';

export interface DaemonOptions {
  socket: string;
  policy: () => Policy;
  /** Structured log lines (the CLI prints them). */
  log?: LogFn;
  /** Bytes queued to one client before its records are dropped instead. */
  maxClientBacklog?: number;
  /**
   * Bytes queued to all connections of one uid together before records to any of them are dropped instead
   * (default 4 × maxClientBacklog, at least maxClientBacklog): a user's many connections that do not read hold
   * this much of the daemon's memory, not maxClientBacklog per connection.
   */
  maxUserBacklog?: number;
  /**
   * The shortest time between two flush ticks (ms): records go out at the end
   * of the event-loop turn they arrive in when the last tick is at least this
   * long ago (an idle daemon adds no wait), else they wait for the tick this
   * long after the last, with those that come meanwhile: at most one write
   * per client per flushMs, however fast kernel events come. 0 = every turn.
   * 0–100, default 1 (flowgrabd --flush-interval).
   */
  flushMs?: number;
  /**
   * How long the receive worker of an event socket (conntrack, neighbours) lets events gather after the first
   * reaches an idle socket before it wakes the daemon (ms, 0–100; default 0.25). The library's 1 ms saves
   * wake-ups; at a steady 5 000 events/s it was a millisecond of every record's latency. It applies to every
   * event socket opened in this process from then on (receiveWorkers.lingerMs): the daemon owns its process.
   */
  receiveLingerMs?: number;
  /** The NFQUEUE queue the daemon owns and shares among clients by mark. */
  queue?: QueueConfig;
  /** How clients are identified: SO_PEERCRED, unix_diag, or SO_PEERCRED falling back to unix_diag (default). */
  peerIdentity?: PeerMethod;
  /** Idle, unfinished-frame and identification timeouts (ms); defaults in limits.ts. */
  timeouts?: Partial<ConnectionTimeouts>;
  /** Sweep flowgrab nft tables left by killed processes at start (default true). */
  sweepStale?: boolean;
}
