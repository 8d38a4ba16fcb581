/**
 * flowgrabd's own bounds on what one client or one local user can make it
 * hold, whatever the policy grants: every count and size a client controls
 * has a ceiling here. The graph's own size caps (nodes, forks, text) live
 * with the policy engine; POPULATE_TEXT_PER_FLOW is the daemon's bound on
 * what it keeps for a flow before any graph check runs.
 */
import { GRAPH_LIMITS } from '../filters/limits.js';

/** Flows (any state, authorized or not) one uid may hold across all its connections. */
export const FLOWS_PER_UID = 64;
/**
 * Sources in the graphs one uid has instantiated, across all its flows. Each source that reads the kernel
 * holds a socket and a receive thread with an 8 MiB ring: 64 flows of 16 sources each let one user start
 * 1 024 threads (32 such flows reached 1.4 GB).
 */
export const SOURCES_PER_UID = 64;
/** NFQUEUE mark registrations one uid may hold. */
export const REGISTRATIONS_PER_UID = 16;
/** Connections one uid may hold at once (root included: a runaway root script must not starve the rest). */
export const CONNECTIONS_PER_UID = 32;
/** Connections in all, identified or not: file descriptors are finite. */
export const CONNECTIONS_TOTAL = 1024;
/** Graph text (and GraphSpec JSON) accumulated by populate over one flow's life, in bytes. */
export const POPULATE_TEXT_PER_FLOW = GRAPH_LIMITS.textLength;
/** Frames read but not yet answered on one connection; past it, the daemon stops reading that connection. */
export const PENDING_FRAMES = 32;
/**
 * Bytes of frames a connection may have waiting, all frames together: reading stops past it as past
 * PENDING_FRAMES. Frames are up to 1 MiB each: 32 of them per connection, and 32 connections per user, let
 * one user make the daemon hold a gigabyte (260 MB was seen).
 */
export const PENDING_BYTES = 1 << 20;
/**
 * Bytes of replies a client may leave unread before the daemon takes no further request from it (records
 * have their own, larger bound: DaemonOptions.maxClientBacklog). 32 connections that never read made a
 * user the policy does not name cost the daemon 400 MB of replies.
 */
export const REPLY_BACKLOG = 64 << 10;
/** Flows listed per client in a `status` reply; the rest are counted. */
export const STATUS_FLOWS = 64;
/** Clients listed in a `status` reply (root sees all); the rest are counted. */
export const STATUS_CLIENTS = 64;
/** Graph text shown per flow in `status`, in characters. */
export const STATUS_GRAPH_CHARS = 512;
/** replay() readers (each a small child process) one uid may have running, and all uids together. */
export const REPLAY_READERS_PER_UID = 8;
export const REPLAY_READERS_TOTAL = 64;

export interface ConnectionTimeouts {
  /** A connection that holds no flow and no queue registration and sends nothing for this long is closed (ms). */
  idleMs: number;
  /** A frame begun must be complete within this long (ms), or the connection is closed. */
  partialFrameMs: number;
  /** How long the kernel may take to name the peer (ms). */
  identifyMs: number;
}

export const DEFAULT_TIMEOUTS: ConnectionTimeouts = { idleMs: 300_000, partialFrameMs: 10_000, identifyMs: 5_000 };
