/**
 * One client connection of flowgrabd: its frames (validated, handled in
 * order), its flows (authorized against the policy for the peer the kernel
 * named, records batched to it with loss counted when it stops reading), its
 * NFQUEUE registrations, and everything released at once when it goes.
 */
import type { Socket } from 'node:net';
import { authorize } from '../auth/authorize.js';
import { type Policy, type Principal, principalFor, ROOT_PRINCIPAL } from '../auth/policy.js';
import { FlowgrabError } from '../errors.js';
import { printGraph } from '../filters/print.js';
import { Flowgrab } from '../flow/flowgrab.js';
import type { FlowHandle } from '../flow/handle.js';
import type { Peer } from './peer.js';
import {
  type Event,
  encodeFrame,
  errorBody,
  FrameReader,
  frameText,
  PROTOCOL_VERSION,
  type Reply,
  Request,
} from './protocol.js';
import type { QueueClient } from './queue.js';
import type { Daemon } from './server.js';

interface RemoteFlow {
  id: number;
  handle: FlowHandle;
  sent: number;
  dropped: number;
  closedByDaemon?: boolean;
  /** Dropped records not yet reported to the client (reported once it reads again). */
  unreported: number;
  lossTimer?: NodeJS.Timeout;
}

/** The policy's principal for a peer (root may do anything), or undefined: denied. */
const principalOf = (policy: Policy, peer: Peer): Principal | undefined =>
  principalFor(policy, peer) ?? (peer.uid === 0 ? ROOT_PRINCIPAL : undefined);

/** Each record's JSON, kept while the record lives: encoded once however many clients get it. */
const jsonCache = new WeakMap<object, string>();
function recordJson(r: unknown): string {
  if (typeof r !== 'object' || r === null) return JSON.stringify(r);
  let text = jsonCache.get(r);
  if (text === undefined) {
    text = JSON.stringify(r);
    jsonCache.set(r, text);
  }
  return text;
}

const deniedNoPolicy = (peer: Peer) =>
  new FlowgrabError(
    'FG_ERR_DENIED',
    `uid ${peer.uid}${peer.user ? ` (${peer.user})` : ''} is not in the policy: denied`,
    {
      op: 'queue',
    },
  );

export class Client implements QueueClient {
  readonly flows = new Map<number, RemoteFlow>();
  readonly fg: Flowgrab;
  private nextFlow = 1;
  private readonly reader = new FrameReader();
  private queue: Promise<void> = Promise.resolve();
  closed = false;

  constructor(
    readonly d: Daemon,
    readonly conn: Socket,
    readonly peer: Peer,
    readonly cid: number,
  ) {
    this.fg = new Flowgrab({
      authorize: (g, ctx) => {
        const r = authorize(g, peer, d.policy(), { ...ctx, openFlows: d.flowsOf(peer.uid) });
        d.log(r.allowed ? 'info' : 'warn', r.allowed ? 'graph allowed' : 'graph denied', {
          client: cid,
          uid: peer.uid,
          user: peer.user,
          issues: r.issues.map((i) => i.message).join(' | ') || undefined,
        });
        return { issues: r.issues, graph: r.graph };
      },
    });
    conn.on('data', (chunk) => this.onData(chunk));
    conn.on('close', () => void this.shutdown('disconnected'));
    conn.on('error', () => void this.shutdown('socket error'));
  }

  get uid(): number {
    return this.peer.uid;
  }

  deliver(queue: number, packets: Record<string, unknown>[]): boolean {
    if (this.closed || this.conn.destroyed || this.conn.writableLength > this.d.maxBacklog) return false;
    this.send({ v: 1, ev: 'packets', queue, packets });
    return true;
  }

  notice(queue: number, notice: Record<string, unknown>): void {
    this.send({ v: 1, ev: 'queue-notice', queue, notice: { ...notice, ts: Date.now() } });
  }

  send(msg: Reply | Event): boolean {
    if (this.closed || this.conn.destroyed) return false;
    return this.conn.write(encodeFrame(msg));
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      // An oversized frame: the stream cannot be trusted any more. Say why, then hang up on this client only.
      this.d.stats.badFrames++;
      this.send({ v: 1, id: null, ok: false, error: errorBody(err) });
      this.conn.end();
      void this.shutdown('bad frame');
      return;
    }
    // Frames of one connection are handled in order, each after the previous one's reply.
    for (const f of frames) this.queue = this.queue.then(() => this.onFrame(f));
  }

  private async onFrame(frame: Buffer): Promise<void> {
    let req: Request;
    try {
      const json: unknown = JSON.parse(frame.toString('utf8'));
      const r = Request.safeParse(json);
      if (!r.success) {
        const id = typeof (json as { id?: unknown })?.id === 'number' ? (json as { id: number }).id : null;
        this.send({
          v: 1,
          id,
          ok: false,
          error: {
            code: 'FG_ERR_PROTOCOL',
            message: r.error.issues.map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`).join('; '),
          },
        });
        this.d.stats.badFrames++;
        return;
      }
      req = r.data;
    } catch {
      this.send({ v: 1, id: null, ok: false, error: { code: 'FG_ERR_PROTOCOL', message: 'frame is not JSON' } });
      this.d.stats.badFrames++;
      return;
    }
    try {
      this.send({ v: 1, id: req.id, ok: true, ...(await this.handle(req)) });
    } catch (err) {
      this.send({ v: 1, id: req.id, ok: false, error: errorBody(err) });
    }
  }

  private flow(id: number): RemoteFlow {
    const f = this.flows.get(id);
    if (!f) throw Object.assign(new Error(`no flow ${id} on this connection`), { code: 'FG_ERR_INVALID_ARGUMENT' });
    return f;
  }

  private async handle(req: Request): Promise<Record<string, unknown>> {
    switch (req.op) {
      case 'hello':
        return {
          server: { protocol: PROTOCOL_VERSION },
          identity: { uid: this.peer.uid, gid: this.peer.gid, user: this.peer.user },
        };
      case 'status':
        return { status: this.d.status(this.peer) };
      case 'create': {
        const id = this.nextFlow++;
        const handle = this.fg.create({
          name: req.name ?? `${this.peer.user ?? this.peer.uid}/${id}`,
          bufferRecords: req.bufferRecords,
          overflow: req.overflow,
        });
        this.flows.set(id, { id, handle, sent: 0, dropped: 0, unreported: 0 });
        return { flow: id, state: handle.state };
      }
      case 'populate': {
        const f = this.flow(req.flow);
        f.handle.populate(req.graph);
        return { state: f.handle.state };
      }
      case 'instantiate': {
        const f = this.flow(req.flow);
        await f.handle.instantiate();
        this.pipe(f);
        return { state: f.handle.state, graph: f.handle.graph };
      }
      case 'activate':
      case 'pause': {
        const f = this.flow(req.flow);
        await f.handle[req.op]();
        return { state: f.handle.state };
      }
      case 'close': {
        const f = this.flows.get(req.flow);
        if (f) {
          await f.handle.close();
          this.flows.delete(req.flow);
        }
        return { state: 'closed' };
      }
      case 'stats': {
        const f = this.flow(req.flow);
        return { stats: { ...f.handle.stats(), sent: f.sent, droppedToClient: f.dropped } };
      }
      case 'queue': {
        const principal = principalOf(this.d.policy(), this.peer);
        if (!principal) throw deniedNoPolicy(this.peer);
        return this.d.queueMux().register(this, principal, req);
      }
      case 'verdict':
        return this.d.queueMux().verdict(this, req.queue, req.verdicts);
      case 'unqueue':
        return { released: this.d.queueMux().unregister(this, req.queue, 'client asked') };
    }
  }

  /** Streams a flow's records to the client in batches; a client that cannot keep up loses records, counted. */
  private pipe(f: RemoteFlow): void {
    /** Records as JSON text: clients running the same graph get the same record objects, encoded once. */
    let batch: string[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const records = batch;
      batch = [];
      if (this.conn.writableLength > this.d.maxBacklog) {
        // Count now, tell later: a client that is not reading must not get a queue of loss notices either.
        f.dropped += records.length;
        f.unreported += records.length;
        this.d.stats.droppedToClients += records.length;
        this.watchLoss(f);
        return;
      }
      this.reportLoss(f);
      f.sent += records.length;
      if (!this.closed && !this.conn.destroyed)
        this.conn.write(frameText(`{"v":1,"ev":"records","flow":${f.id},"records":[${records.join(',')}]}`));
    };
    f.handle.records$.subscribe({
      next: (r) => {
        batch.push(recordJson(r));
        if (batch.length >= 256) flush();
        else this.d.flushSoon(flush);
      },
      error: (err) => {
        flush();
        this.send({ v: 1, ev: 'end', flow: f.id, error: errorBody(err) });
      },
      complete: () => {
        flush();
        // A flow the daemon closed has had its `closed` event; an `end` would read as a normal finish.
        if (!f.closedByDaemon) this.send({ v: 1, ev: 'end', flow: f.id });
      },
    });
    f.handle.lost$.subscribe((n) => this.send({ v: 1, ev: 'lost', flow: f.id, notice: n }));
  }

  /** Tells the client of its loss once it reads again (its backlog is back under the limit), with the whole count. */
  private watchLoss(f: RemoteFlow): void {
    if (f.lossTimer) return;
    f.lossTimer = setInterval(() => {
      if (!this.closed && this.conn.writableLength > this.d.maxBacklog) return;
      clearInterval(f.lossTimer);
      f.lossTimer = undefined;
      this.reportLoss(f);
    }, 100);
    f.lossTimer.unref();
  }

  private reportLoss(f: RemoteFlow): void {
    if (f.unreported === 0) return;
    const count = f.unreported;
    f.unreported = 0;
    this.send({
      v: 1,
      ev: 'lost',
      flow: f.id,
      notice: {
        kind: 'loss',
        where: 'reader',
        count,
        source: 'daemon',
        message: `${count} records dropped: the client was not reading`,
        ts: Date.now(),
      },
    });
  }

  /** Re-checks every flow against a new policy; closes those it forbids, telling the client why. */
  async recheck(policy: Policy): Promise<void> {
    this.d.mux?.recheck(this, principalOf(policy, this.peer));
    for (const f of [...this.flows.values()]) {
      const asked = f.handle.requested;
      if (!asked) continue; // not instantiated yet: the policy applies when it is
      const r = authorize(asked, this.peer, policy, { openFlows: 0 });
      let reason: string;
      if (!r.allowed) reason = `the new policy denies it: ${r.issues.map((i) => i.message).join('; ')}`;
      else if (printGraph(r.graph) !== f.handle.graph) {
        // Still allowed, but the scope, redaction or rate limit changed: the running graph would show too much.
        reason = `the new policy changes what it may show (now runs as ${printGraph(r.graph)}); open it again`;
      } else continue;
      f.closedByDaemon = true;
      this.send({ v: 1, ev: 'closed', flow: f.id, reason });
      await f.handle.close();
      this.flows.delete(f.id);
      this.d.log('warn', 'flow closed by policy reload', { client: this.cid, uid: this.peer.uid, flow: f.id, reason });
    }
  }

  async shutdown(why: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Packets waiting for this client's verdicts are decided now, not at their timeout.
    this.d.mux?.release(this, why);
    await this.fg.close();
    this.flows.clear();
    this.d.forget(this);
    this.d.log('info', 'client gone', { client: this.cid, uid: this.peer.uid, why });
    if (!this.conn.destroyed) this.conn.destroy();
  }
}
