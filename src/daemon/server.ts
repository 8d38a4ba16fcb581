/**
 * flowgrabd: owns the privileged sockets and serves flow handles over a Unix
 * stream socket. Each client is identified by the kernel; its graphs are
 * checked against the policy (whole graph, at instantiate) and run with the
 * principal's scope enforced. A client that goes away has all it held
 * released at once. A client that stops reading loses records (counted,
 * reported), never the daemon's memory.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Policy } from '../auth/policy.js';
import type { FlowHandle } from '../flow/handle.js';
import { Client } from './connection.js';
import { identifyPeer, type Peer, type PeerMethod } from './peer.js';
import { type QueueConfig, QueueMux } from './queue.js';

export interface DaemonOptions {
  socket: string;
  policy: () => Policy;
  /** Structured log lines (the CLI prints them). */
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Bytes queued to one client before its records are dropped instead. */
  maxClientBacklog?: number;
  /**
   * How long records wait to be sent with the ones after them (ms): one write
   * per client per tick instead of one per kernel event. 0 = at the end of the
   * current event-loop turn. Default 1.
   */
  flushMs?: number;
  /** The NFQUEUE queue the daemon owns and shares among clients by mark. */
  queue?: QueueConfig;
  /** How clients are identified: SO_PEERCRED, unix_diag, or SO_PEERCRED falling back to unix_diag (default). */
  peerIdentity?: PeerMethod;
}

export interface DaemonStats {
  clients: number;
  connections: number;
  badFrames: number;
  deniedConnections: number;
  droppedToClients: number;
}

export class Daemon {
  readonly stats: DaemonStats = { clients: 0, connections: 0, badFrames: 0, deniedConnections: 0, droppedToClients: 0 };
  readonly maxBacklog: number;
  private readonly clients = new Set<Client>();
  /** Connections whose peer is being looked up (unix_diag is asynchronous): nothing is read from them yet. */
  private readonly identifying = new Set<Socket>();
  private server?: Server;
  private nextClient = 1;
  private current: Policy;
  /** The shared NFQUEUE queue, when the daemon owns one. */
  mux?: QueueMux;
  /** Flows with records waiting for the next flush tick. */
  private readonly flushes = new Set<() => void>();
  private flushTimer?: NodeJS.Timeout | NodeJS.Immediate;

  constructor(private readonly opts: DaemonOptions) {
    this.current = opts.policy();
    this.maxBacklog = opts.maxClientBacklog ?? 8 << 20;
  }

  policy(): Policy {
    return this.current;
  }

  /** Runs `flush` at the next flush tick, shared by every client's flows. */
  flushSoon(flush: () => void): void {
    this.flushes.add(flush);
    if (this.flushTimer) return;
    const run = () => {
      this.flushTimer = undefined;
      const due = [...this.flushes];
      this.flushes.clear();
      for (const f of due) f();
    };
    const ms = this.opts.flushMs ?? 1;
    this.flushTimer = ms > 0 ? setTimeout(run, ms) : setImmediate(run);
  }

  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    this.opts.log?.(level, msg, fields);
  }

  flowsOf(uid: number): number {
    let n = 0;
    for (const c of this.clients)
      if (c.peer.uid === uid)
        // Only flows past instantiate count; the one being authorized is still populated.
        n += [...c.flows.values()].filter((f) => f.handle.state !== 'created' && f.handle.state !== 'populated').length;
    return n;
  }

  queueMux(): QueueMux {
    if (!this.mux)
      throw Object.assign(new Error('this flowgrabd shares no NFQUEUE queue (start it with --queue N)'), {
        code: 'FG_ERR_INVALID_STATE',
      });
    return this.mux;
  }

  async listen(): Promise<void> {
    if (this.opts.queue) {
      // Bound before the first client: from now on every packet queued to it gets a verdict from someone.
      const mux = new QueueMux(this.opts.queue, (level, msg, fields) => this.log(level, msg, fields));
      await mux.start();
      this.mux = mux;
    }
    const path = this.opts.socket;
    mkdirSync(dirname(path), { recursive: true });
    // A socket file left by a killed daemon would make listen() fail: replace it.
    if (existsSync(path)) unlinkSync(path);
    const server = createServer((conn) => this.accept(conn));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    // Connectable by every local user: the policy decides what each may do.
    chmodSync(path, 0o666);
    this.log('info', 'listening', { socket: path });
  }

  private accept(conn: Socket): void {
    this.stats.connections++;
    // Not a byte is read before the kernel has said who this is.
    conn.pause();
    this.identifying.add(conn);
    identifyPeer(conn, { method: this.opts.peerIdentity }).then(
      (peer) => {
        this.identifying.delete(conn);
        if (conn.destroyed) return;
        const c = new Client(this, conn, peer, this.nextClient++);
        this.clients.add(c);
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
        this.identifying.delete(conn);
        this.stats.deniedConnections++;
        this.log('warn', 'connection refused: peer unknown', { error: (err as Error).message });
        conn.destroy();
      },
    );
  }

  forget(c: Client): void {
    this.clients.delete(c);
    this.stats.clients = this.clients.size;
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
    for (const c of this.clients) await c.recheck(next);
  }

  /** What a client may see of the daemon: root sees every client; others only their own. */
  status(asker: Peer): Record<string, unknown> {
    const clients = [...this.clients]
      .filter((c) => asker.uid === 0 || c.peer.uid === asker.uid)
      .map((c) => ({
        client: c.cid,
        pid: c.peer.pid,
        uid: c.peer.uid,
        user: c.peer.user,
        flows: [...c.flows.values()].map((f) => ({
          flow: f.id,
          name: f.handle.name,
          graph: f.handle.graph,
          sent: f.sent,
          droppedToClient: f.dropped,
          ...f.handle.stats(),
        })),
      }));
    return {
      ...this.stats,
      clientCount: this.stats.clients,
      clients,
      ...(this.mux ? { nfqueue: this.mux.status(asker.uid) } : {}),
    };
  }

  /** Every client's flows: for the metrics endpoint. */
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
    // Whatever waits for the flush tick goes out first (clients still connected get their last records).
    if (this.flushTimer) clearTimeout(this.flushTimer as NodeJS.Timeout);
    this.flushTimer = undefined;
    for (const f of this.flushes) f();
    this.flushes.clear();
    for (const conn of this.identifying) conn.destroy();
    this.identifying.clear();
    await Promise.all([...this.clients].map((c) => c.shutdown('daemon stopping')));
    await this.mux?.close();
    this.mux = undefined;
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    try {
      unlinkSync(this.opts.socket);
    } catch {
      // already gone
    }
  }
}
