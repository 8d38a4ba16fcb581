/**
 * The narrow views the parts of flowgrabd have of each other, so that none
 * imports another's implementation: a client connection (connection.ts)
 * sees the daemon as a DaemonHost, which server.ts implements; requests,
 * record piping and status see a connection as a ClientView, which
 * connection.ts implements. Dependencies are passed in, never imported
 * upward, and the module graph stays a tree.
 */
import type { Policy } from '../auth/policy.js';
import type { GraphSpec } from '../filters/spec.js';
import type { Flowgrab } from '../flow/flowgrab.js';
import type { FlowHandle, FlowStats } from '../flow/handle.js';
import type { ConnectionTimeouts } from './limits.js';
import type { Peer } from './peer.js';
import type { Event } from './protocol.js';
import type { QueueMux } from './queue.js';
import type { QueueClient } from './registration.js';

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface DaemonStats {
  clients: number;
  connections: number;
  badFrames: number;
  deniedConnections: number;
  droppedToClients: number;
  /** Notices and events dropped while their client was not reading. */
  droppedNotices: number;
  /** Clients hung up on because their unread output passed twice the backlog bound. */
  slowClientsClosed: number;
  /** The most bytes of unread output the daemon has held for one user, over all their connections. */
  peakUserUnread: number;
  /** Connections closed by the idle or unfinished-frame timeout. */
  timedOutConnections: number;
  /** Connections refused by the per-uid or total connection caps. */
  refusedConnections: number;
}

/** A flow a client holds in the daemon. */
export interface RemoteFlow {
  id: number;
  handle: FlowHandle;
  sent: number;
  dropped: number;
  /** Bytes of graph text (or GraphSpec JSON) populate has taken for this flow. */
  populated: number;
  /** The GraphSpec the flow was populated with (text populates leave it unset): its sources are counted from it. */
  populatedSpec?: unknown;
  /** Sources in its graph, once instantiated (SOURCES_PER_UID). */
  sources?: number;
  closedByDaemon?: boolean;
  /** Dropped records not yet reported to the client (reported once it reads again). */
  unreported: number;
  lossTimer?: NodeJS.Timeout;
}

/** What one connection needs of the daemon (server.ts implements it). */
export interface DaemonHost {
  readonly stats: DaemonStats;
  readonly maxBacklog: number;
  /** Bytes queued to all connections of one uid before records to any of them are dropped (DaemonOptions.maxUserBacklog). */
  readonly maxUserBacklog: number;
  readonly timeouts: ConnectionTimeouts;
  readonly mux?: QueueMux;
  /** Clients connected now (identified). */
  readonly clientList: ClientView[];
  policy(): Policy;
  /** What authorize() needs of the daemon itself: its own queue (never a graph's) and its anonymization secret. */
  authContext(): { reservedQueues: number[]; anonymizeKey: string };
  log: LogFn;
  /** Runs `flush` at the next flush tick, shared by every client's flows. */
  flushSoon(flush: () => void): void;
  /** Flows of `uid` past instantiate. */
  flowsOf(uid: number): number;
  /** Flows of `uid` in any state. */
  allFlowsOf(uid: number): number;
  /** Sources in the instantiated graphs of `uid`'s flows. */
  sourcesOf(uid: number): number;
  /** Bytes written to `uid`'s connections that the daemon still holds (not yet taken by the kernel). */
  unreadOf(uid: number): number;
  /** The shared NFQUEUE queue, or a FlowgrabError when the daemon has none. */
  queueMux(): QueueMux;
  status(asker: Peer): DaemonStatus;
  /** The connection is gone: stop counting it. */
  forget(c: ClientView): void;
  /** A graph was instantiated: the namespaces it names may hold its firewall objects (netns-record.ts). */
  noteNetns(g: GraphSpec | undefined): void;
}

/** What requests, record piping and status need of one connection (connection.ts implements it). */
export interface ClientView extends QueueClient {
  readonly d: DaemonHost;
  readonly peer: Peer;
  readonly flows: Map<number, RemoteFlow>;
  readonly fg: Flowgrab;
  nextFlow: number;
  /** A denial for not being in the policy has been logged for this connection. */
  deniedLogged: boolean;
  /** Records go to this client in compact frames (compact.ts), as its hello asked; else as JSON. */
  compact: boolean;
  readonly closed: boolean;
  /** Unread output over the bound: records, packets and notices are dropped rather than queued. */
  readonly congested: boolean;
  /** Bytes written to this client that the daemon still holds (not yet taken by the kernel). */
  readonly unread: number;
  write(bytes: Buffer | string): boolean;
  event(msg: Event): void;
  /** An event the client waits for (a flow's end or closing): never dropped, as a reply is not. */
  final(msg: Event): void;
  /** Closes one flow for the daemon's reasons, telling the client why. */
  closeFlow(f: RemoteFlow, reason: string, msg?: string): Promise<void>;
}

/** One flow in the status report: its graph (cut at STATUS_GRAPH_CHARS), what was sent, and its stats. */
export interface StatusFlow extends FlowStats {
  flow: number;
  name: string;
  graph?: string;
  sent: number;
  droppedToClient: number;
}

/** One client in the status report. */
export interface StatusClient {
  client: number;
  pid?: number;
  uid: number;
  user?: string;
  /** Bytes written to the client that the daemon still holds (the kernel has not taken them: the client is not reading). */
  unread: number;
  flows: StatusFlow[];
  /** Flows past STATUS_FLOWS, not listed. */
  flowsNotShown?: number;
}

/** What `status` returns (RemoteFlowgrab.status(), `flowgrab status --json`): the daemon's counters and the clients the asker may see. */
export type DaemonStatus = Omit<DaemonStats, 'clients'> & {
  clientCount: number;
  clients: StatusClient[];
  /** Clients past STATUS_CLIENTS, not listed. */
  clientsNotShown?: number;
  /** The shared NFQUEUE queue, when the daemon has one. */
  nfqueue?: Record<string, unknown>;
};
