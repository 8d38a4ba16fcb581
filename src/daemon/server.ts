/**
 * flowgrabd: owns the privileged sockets and serves flow handles over a Unix
 * stream socket. Each client is identified by the kernel; its graphs are
 * checked against the policy (whole graph, at instantiate) and run with the
 * principal's scope enforced. A client that goes away has all it held
 * released at once. A client that stops reading loses records (counted,
 * reported), never the daemon's memory.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Policy } from '../auth/policy.js';
import { FlowgrabError } from '../errors.js';
import { openRegularFile, setDefaultReplayOpener } from '../filters/replay.js';
import type { GraphSpec } from '../filters/spec.js';
import type { FlowHandle } from '../flow/handle.js';
import { receiveWorkers } from '../netlink/batched.js';
import { type FileLock, lockFile } from '../netlink/file-lock.js';
import { sourcesTornDown } from '../sources/teardown.js';
import { Client } from './connection.js';
import type { ClientView, DaemonHost, DaemonStats, DaemonStatus, LogFn } from './host.js';
import { CONNECTIONS_PER_UID, CONNECTIONS_TOTAL, type ConnectionTimeouts, DEFAULT_TIMEOUTS } from './limits.js';
import { LOG_WINDOW_MS, LogLimiter } from './log-limit.js';
import { NetnsRecord, sweepRecorded } from './netns-record.js';
import type { DaemonOptions } from './options.js';
import { identifyPeer, type Peer } from './peer.js';
import { encodeFrame, failure, PROTOCOL_VERSION } from './protocol.js';
import { QueueMux } from './queue.js';
import { forgetBatches } from './remote-flow.js';
import { checkSocketDir, clearStaleSocket, listenSocket } from './socket.js';
import { boundedStatus, enforceFlowLimits } from './status.js';
import { ClientsByUser } from './users.js';

export type { DaemonStats } from './host.js';
export type { DaemonOptions } from './options.js';

/** The daemon's receive linger (DaemonOptions.receiveLingerMs). */
export const DAEMON_RECEIVE_LINGER_MS = 0.25;

export class Daemon implements DaemonHost {
  readonly stats: DaemonStats = {
    clients: 0,
    connections: 0,
    badFrames: 0,
    deniedConnections: 0,
    droppedToClients: 0,
    droppedNotices: 0,
    slowClientsClosed: 0,
    peakUserUnread: 0,
    timedOutConnections: 0,
    refusedConnections: 0,
  };
  readonly maxBacklog: number;
  readonly maxUserBacklog: number;
  readonly timeouts: ConnectionTimeouts;
  private readonly clients = new Set<Client>();
  /** The same clients by uid: what a user holds is counted over their own connections only. */
  private readonly users = new ClientsByUser<Client>();
  /** Connections whose peer is being looked up (unix_diag is asynchronous): nothing is read from them yet. */
  private readonly identifying = new Set<Socket>();
  private server?: Server;
  /** Namespaces this daemon's clients put firewall objects in (`<socket>.netns`), swept at the next start. */
  private netns?: NetnsRecord;
  /** The lock on the socket path (`<socket>.lock`), held from listen() to close(). */
  private lock?: FileLock;
  /** listen()'s work after taking the lock, while under way (close() waits for it). */
  private starting?: Promise<void>;
  private nextClient = 1;
  private current: Policy;
  /** The shared NFQUEUE queue, when the daemon owns one. */
  mux?: QueueMux;
  /** Key of every anonymize() the daemon runs: its secret, per process, never a client's (a known key makes anonymization reversible). */
  readonly anonymizeKey = randomBytes(32).toString('hex');
  /** Flows with records waiting for the next flush tick. */
  private readonly flushes = new Set<() => void>();
  /** Cancels the flush tick to come (a timer or an immediate); undefined when none is due. */
  private cancelFlush?: () => void;
  /** When the last flush tick ran (performance.now()). */
  private lastFlush = Number.NEGATIVE_INFINITY;
  /** DaemonOptions.flushMs, checked. */
  private readonly flushMs: number;

  constructor(private readonly opts: DaemonOptions) {
    this.current = opts.policy();
    this.maxBacklog = opts.maxClientBacklog ?? 8 << 20;
    this.maxUserBacklog = opts.maxUserBacklog ?? 4 * this.maxBacklog;
    if (!(this.maxUserBacklog >= this.maxBacklog))
      throw new FlowgrabError(
        'FG_ERR_INVALID_ARGUMENT',
        `maxUserBacklog must be at least maxClientBacklog (${this.maxBacklog}), not ${this.maxUserBacklog}`,
      );
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    const linger = opts.receiveLingerMs ?? DAEMON_RECEIVE_LINGER_MS;
    if (!(linger >= 0 && linger <= 100))
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `receiveLingerMs must be 0–100 ms, not ${linger}`);
    // A longer interval would hold every client's records that long (forever, for Infinity).
    this.flushMs = opts.flushMs ?? 1;
    if (!(this.flushMs >= 0 && this.flushMs <= 100))
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `flushMs must be 0–100 ms, not ${this.flushMs}`);
    receiveWorkers.lingerMs = linger;
  }

  /** What authorize() needs of the daemon itself: its own queue (never a graph's) and its anonymization secret. */
  authContext(): { reservedQueues: number[]; anonymizeKey: string } {
    return { reservedQueues: this.mux ? [this.mux.cfg.queue] : [], anonymizeKey: this.anonymizeKey };
  }

  policy(): Policy {
    return this.current;
  }

  /**
   * Runs `flush` at the next flush tick, shared by every client's flows: at the end of this event-loop turn
   * when the last tick is flushMs or more ago, else flushMs after the last tick (see DaemonOptions.flushMs).
   */
  flushSoon(flush: () => void): void {
    this.flushes.add(flush);
    // No closure made here: its context would be allocated on every call.
    if (!this.cancelFlush) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    const wait = this.lastFlush + this.flushMs - performance.now();
    if (wait > 0) {
      const t = setTimeout(this.flushTick, wait);
      this.cancelFlush = () => clearTimeout(t);
    } else {
      const i = setImmediate(this.flushTick);
      this.cancelFlush = () => clearImmediate(i);
    }
  }

  /** A flush tick: every flow with records waiting writes them, then the batches they shared are let go. */
  private readonly flushTick = () => {
    this.cancelFlush = undefined;
    this.lastFlush = performance.now();
    const due = [...this.flushes];
    this.flushes.clear();
    for (const f of due) {
      // Each flow's flush catches its own failures (remote-flow.ts); one that throws anyway must not take the
      // rest of the tick, every other client's records, with it.
      try {
        f();
      } catch (err) {
        this.opts.log?.('error', 'flush failed', { error: (err as Error)?.message });
      }
    }
    forgetBatches();
  };

  /** Lines a user's actions cause are held back past a burst (log-limit.ts); the daemon's own never. */
  private readonly limiter = new LogLimiter((level, msg, fields) => this.opts.log?.(level, msg, fields));
  private readonly logSweep = setInterval(() => this.limiter.sweep(), LOG_WINDOW_MS).unref();
  readonly log: LogFn = this.limiter.log;

  flowsOf(uid: number): number {
    return this.users.flows(uid);
  }

  /** Flows of `uid` in any state, authorized or not: for the daemon's own per-uid cap. */
  allFlowsOf(uid: number): number {
    return this.users.allFlows(uid);
  }

  sourcesOf(uid: number): number {
    return this.users.sources(uid);
  }

  unreadOf(uid: number): number {
    return this.users.unread(uid);
  }

  /** Clients connected now (identified). */
  get clientList(): Client[] {
    return [...this.clients];
  }

  queueMux(): QueueMux {
    if (!this.mux)
      throw new FlowgrabError(
        'FG_ERR_INVALID_STATE',
        'this flowgrabd shares no NFQUEUE queue (start it with --queue N)',
        {
          op: 'queue',
        },
      );
    return this.mux;
  }

  async listen(): Promise<void> {
    const path = this.opts.socket;
    checkSocketDir(path);
    // One daemon per socket path, from here to close(): two starting at once both found no live daemon, and the
    // second unlinked the first's new socket (and the first's close() the second's). The kernel drops the lock
    // of a killed daemon.
    this.lock = lockFile(`${path}.lock`, `flowgrabd socket ${path}`, 'listen');
    try {
      this.starting = this.start(path);
      await this.starting;
    } catch (err) {
      if (!this.server) {
        this.lock.release();
        this.lock = undefined;
      }
      throw err;
    }
  }

  private async start(path: string): Promise<void> {
    if (this.opts.queue) {
      // Bound before the first client: from now on every packet queued to it gets a verdict from someone.
      const mux = new QueueMux(this.opts.queue, (level, msg, fields) => this.log(level, msg, fields));
      await mux.start();
      this.mux = mux;
    }
    // A socket file left by a killed daemon would make listen() fail: replace it (never a live daemon's).
    await clearStaleSocket(path);
    this.netns = new NetnsRecord(`${path}.netns`);
    if (this.opts.queue?.netns) this.netns.note(this.opts.queue.netns);
    if (this.opts.sweepStale !== false) await sweepRecorded(this.netns, (level, msg, f) => this.log(level, msg, f));
    // In the daemon, replay() opens files only with a client's rights (connection.ts); anything else is refused.
    setDefaultReplayOpener((file) => {
      throw new FlowgrabError('FG_ERR_PERMISSION', `replay: ${file}: not opened outside a client's request`, {
        op: 'replay',
      });
    });
    const server = createServer((conn) => this.accept(conn));
    server.maxConnections = CONNECTIONS_TOTAL;
    // Connectable by every local user (mode 0666 from the umask at bind): the policy decides what each may do.
    await listenSocket(server, path);
    this.server = server;
    this.log('info', 'listening', { socket: path });
  }

  /** Says why, then hangs up (the connection is not a client yet). */
  private refuse(conn: Socket, message: string): void {
    this.stats.refusedConnections++;
    conn.end(encodeFrame({ v: PROTOCOL_VERSION, id: null, ok: false, error: failure('FG_ERR_DENIED', message) }));
    setTimeout(() => conn.destroy(), 1000).unref();
  }

  private accept(conn: Socket): void {
    this.stats.connections++;
    // Not a byte is read before the kernel has said who this is.
    conn.pause();
    this.identifying.add(conn);
    conn.on('error', () => {});
    const slow = setTimeout(() => conn.destroy(), this.timeouts.identifyMs);
    slow.unref();
    identifyPeer(conn, { method: this.opts.peerIdentity }).then(
      (peer) => {
        clearTimeout(slow);
        this.identifying.delete(conn);
        if (conn.destroyed) return;
        if (this.users.connections(peer.uid) >= CONNECTIONS_PER_UID) {
          this.log('warn', 'connection refused: too many', { uid: peer.uid, user: peer.user });
          this.refuse(
            conn,
            `uid ${peer.uid} already has ${CONNECTIONS_PER_UID} connections, the most one user may have`,
          );
          return;
        }
        const c = new Client(this, conn, peer, this.nextClient++);
        this.clients.add(c);
        this.users.add(c);
        this.stats.clients = this.clients.size;
        this.log('info', 'client connected', {
          client: c.cid,
          pid: peer.pid,
          uid: peer.uid,
          user: peer.user,
          via: peer.via,
        });
        conn.resume();
      },
      (err) => {
        clearTimeout(slow);
        this.identifying.delete(conn);
        this.stats.deniedConnections++;
        this.log('warn', 'connection refused: peer unknown', { error: (err as Error).message });
        conn.destroy();
      },
    );
  }

  forget(c: ClientView): void {
    this.clients.delete(c as Client);
    this.users.delete(c as Client);
    this.stats.clients = this.clients.size;
  }

  noteNetns(g: GraphSpec | undefined): void {
    this.netns?.noteGraph(g);
  }

  /** Reloads the policy (SIGHUP): flows still allowed go on; the others are closed, with the reason sent. */
  async reload(): Promise<void> {
    let next: Policy;
    try {
      next = this.opts.policy();
    } catch (err) {
      this.log('error', 'policy reload failed; keeping the old policy', { error: (err as Error).message });
      return;
    }
    this.current = next;
    this.log('info', 'policy reloaded', { principals: next.principals.length });
    for (const c of [...this.clients]) await c.recheck(next);
    await enforceFlowLimits([...this.clients], next);
  }

  /** What a client may see of the daemon: root sees every client; others only their own; bounded in size. */
  status(asker: Peer): DaemonStatus {
    return boundedStatus(this, asker);
  }

  /** Every client's flows (tests and diagnostics; the metrics show only sums of these). */
  allFlows(): {
    uid: number;
    user?: string;
    name: string;
    sent: number;
    dropped: number;
    stats: ReturnType<FlowHandle['stats']>;
  }[] {
    return [...this.clients].flatMap((c) =>
      [...c.flows.values()].map((f) => ({
        uid: c.peer.uid,
        user: c.peer.user,
        name: f.handle.name,
        sent: f.sent,
        dropped: f.dropped,
        stats: f.handle.stats(),
      })),
    );
  }

  /** Stops accepting, releases every client (rules and sockets go with their flows), removes the socket file. */
  async close(): Promise<void> {
    // A listen() under way finishes first: closing meanwhile let it bind a socket after the lock was let go.
    await this.starting?.catch(() => {});
    clearInterval(this.logSweep);
    // Whatever waits for the flush tick goes out first (clients still connected get their last records).
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    for (const f of this.flushes) f();
    this.flushes.clear();
    forgetBatches();
    for (const conn of this.identifying) conn.destroy();
    this.identifying.clear();
    await Promise.all([...this.clients].map((c) => c.shutdown('daemon stopping')));
    await this.mux?.close();
    this.mux = undefined;
    // Closed feeds remove their nft tables asynchronously: they are gone when close() returns (the caller may exit).
    await sourcesTornDown();
    setDefaultReplayOpener(openRegularFile); // this process may go on using flowgrab as itself
    if (!this.server) {
      this.lock?.release(); // never listened: the socket path is not ours (maybe a live daemon's)
      this.lock = undefined;
      return;
    }
    await new Promise<void>((r) => this.server?.close(() => r()));
    try {
      unlinkSync(this.opts.socket);
    } catch {
      // already gone
    }
    this.lock?.release();
    this.lock = undefined;
  }
}
