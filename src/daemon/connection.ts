/**
 * One client connection of flowgrabd: its frames (validated, handled in
 * order, at most PENDING_FRAMES and PENDING_BYTES waiting), its flows and queue registrations
 * (requests.ts), and everything released at once when it goes.
 *
 * Nothing a client does can make the daemon hold more than a bounded amount
 * for it, or for its user over all their connections (maxUserBacklog): while
 * its unread output is over the backlog bound the daemon stops
 * reading its requests (so a client that never reads cannot pile up
 * replies); records and notices meanwhile are dropped and counted; a reply
 * that would still take the output past twice the bound closes the
 * connection. Unfinished frames and idle connections time out.
 */
import type { Socket } from 'node:net';
import { authorize } from '../auth/authorize.js';
import type { Policy } from '../auth/policy.js';
import { printGraph } from '../filters/print.js';
import { withReplayOpener } from '../filters/replay.js';
import { Flowgrab } from '../flow/flowgrab.js';
import { forClient, type Guarded } from './guard.js';
import type { ClientView, DaemonHost, RemoteFlow } from './host.js';
import { InOrder } from './in-order.js';
import { PENDING_BYTES, PENDING_FRAMES, REPLY_BACKLOG } from './limits.js';
import { openAsPeer } from './open-as.js';
import type { Peer } from './peer.js';
import {
  type ErrorBody,
  type Event,
  encodeFrame,
  errorBody,
  FrameReader,
  failure,
  issuesText,
  PROTOCOL_VERSION,
  type Reply,
  Request,
} from './protocol.js';
import { lastWords, principalOf } from './remote-flow.js';
import { handleRequest } from './requests.js';

export class Client implements ClientView, Guarded {
  readonly flows = new Map<number, RemoteFlow>();
  readonly fg: Flowgrab;
  nextFlow = 1;
  private readonly reader = new FrameReader();
  /** The client's requests, handled one at a time in order; dropped once the client has gone (shutdown). */
  private readonly requests = new InOrder();
  /** Frames read and not yet answered. */
  private waiting = 0;
  /** Bytes of the frames waiting (PENDING_BYTES). */
  private waitingBytes = 0;
  /** Bytes of replies written since the client's output was last below the socket's mark (REPLY_BACKLOG). */
  private replyDebt = 0;
  private frameTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  closed = false;
  /** A denial for not being in the policy has been logged for this connection. */
  deniedLogged = false;
  /** Records go in compact frames (compact.ts): the client's hello asked for them. */
  compact = false;

  constructor(
    readonly d: DaemonHost,
    readonly conn: Socket,
    readonly peer: Peer,
    readonly cid: number,
  ) {
    this.fg = new Flowgrab({
      authorize: (g, ctx) => {
        const r = authorize(g, peer, d.policy(), { ...ctx, ...d.authContext(), openFlows: d.flowsOf(peer.uid) });
        const issues = r.issues;
        d.log(issues.length === 0 ? 'info' : 'warn', issues.length === 0 ? 'graph allowed' : 'graph denied', {
          client: cid,
          uid: peer.uid,
          user: peer.user,
          issues: issues.map((i) => i.message).join(' | ') || undefined,
        });
        return { issues, graph: r.graph };
      },
    });
    conn.on('data', (chunk) => forClient(this, () => this.onData(chunk)));
    conn.on('drain', () => this.take());
    conn.on('close', () => void this.shutdown('disconnected'));
    conn.on('error', () => void this.shutdown('socket error'));
    this.touch();
  }

  /** replay() in this client's graphs reads files with the client's own rights, never the daemon's. */
  private readonly openFile = (file: string) => openAsPeer(this.peer, file);

  get uid(): number {
    return this.peer.uid;
  }

  get unread(): number {
    return this.conn.writableLength;
  }

  /**
   * Unread output over the bound, this connection's or its user's over all their connections: records, packets
   * and notices are dropped rather than queued.
   */
  get congested(): boolean {
    return this.full || this.d.unreadOf(this.uid) > this.d.maxUserBacklog;
  }

  /**
   * This connection's own unread output is over its bound. Only this stops the daemon taking its requests:
   * a connection of a user whose other connections are not reading is still answered (it may be the one that
   * reads).
   */
  private get full(): boolean {
    return this.conn.writableLength > this.d.maxBacklog;
  }

  deliver(queue: number, packets: Record<string, unknown>[]): boolean {
    if (this.closed || this.conn.destroyed || this.congested) return false;
    return this.write(encodeFrame({ v: PROTOCOL_VERSION, ev: 'packets', queue, packets }));
  }

  notice(queue: number, notice: Record<string, unknown>): void {
    this.event({
      v: PROTOCOL_VERSION,
      ev: 'queue-notice',
      queue,
      notice: { kind: String(notice.kind), message: String(notice.message), ...notice, ts: Date.now() },
    });
  }

  /** An event the client did not ask for: dropped (and counted) while the client is not reading. */
  event(msg: Event): void {
    if (this.closed || this.conn.destroyed) return;
    if (this.congested) {
      this.d.stats.droppedNotices++;
      return;
    }
    this.write(encodeFrame(msg));
  }

  /**
   * An event the client waits for, as for a reply (a flow's end, or its closing by the daemon): never dropped.
   * One per flow, so what it adds to a congested client's output stays small.
   */
  final(msg: Event): void {
    if (this.closed || this.conn.destroyed) return;
    this.write(encodeFrame(msg));
  }

  /**
   * A reply: never dropped (the client waits for it). A client that does not read them gets no more: its next
   * request waits (see take), and one that lets them pile up anyway is hung up on.
   */
  reply(msg: Reply): void {
    if (this.closed || this.conn.destroyed) return;
    const frame = encodeFrame(msg);
    if (!this.conn.writableNeedDrain) this.replyDebt = 0;
    this.replyDebt += frame.length;
    this.write(frame);
  }

  /**
   * Replies the client has not read are over REPLY_BACKLOG: no request is taken until its output drains. A
   * 'drain' event is due then (the socket is over its mark). Without this a client that never read could make
   * the daemon hold 16 MiB of replies per connection (4-byte frames, each answered with ~100 bytes).
   */
  private get replyCongested(): boolean {
    if (!this.conn.writableNeedDrain) this.replyDebt = 0;
    return this.replyDebt > REPLY_BACKLOG;
  }

  /** Every byte to the client goes here: past twice the backlog bound the connection is closed, never grown. */
  write(bytes: Buffer | string): boolean {
    if (this.closed || this.conn.destroyed) return false;
    if (this.conn.writableLength + bytes.length > 2 * this.d.maxBacklog) {
      this.d.stats.slowClientsClosed++;
      this.d.log('warn', 'client closed: not reading', { client: this.cid, uid: this.uid });
      void this.shutdown('not reading');
      return false;
    }
    this.conn.write(bytes);
    if (this.conn.writableLength > 0) {
      const held = this.d.unreadOf(this.uid);
      if (held > this.d.stats.peakUserUnread) this.d.stats.peakUserUnread = held;
    }
    return true;
  }

  /** Uncaught failure in this client's work (guard.ts): this client goes, nobody else. */
  fail(err: unknown): void {
    this.d.log('error', 'client failed', { client: this.cid, uid: this.uid, error: (err as Error)?.message });
    this.reply({
      v: PROTOCOL_VERSION,
      id: null,
      ok: false,
      error: failure('FG_ERR_INTERNAL', 'internal error: closing'),
    });
    void this.shutdown('internal error');
  }

  private onData(chunk: Buffer): void {
    this.touch();
    this.reader.add(chunk);
    this.take();
  }

  /**
   * Takes the frames read, one at a time, while few wait and the client reads its replies; then reads on, or
   * not. Frames left in the reader wait for the next take (a request done, the client's output drained).
   */
  private take(): void {
    let took = false;
    while (!this.closed && !this.busy()) {
      let f: Buffer | undefined;
      try {
        f = this.reader.next();
      } catch (err) {
        // An oversized frame: the stream cannot be trusted any more. Say why, then hang up on this client only.
        this.d.stats.badFrames++;
        this.hangUp(errorBody(err), 'bad frame');
        return;
      }
      if (!f) break;
      took = true;
      const frame = f;
      this.waiting++;
      this.waitingBytes += frame.length;
      // Frames of one connection are handled in order, each after the previous one's reply.
      this.requests.push(
        () => forClient(this, () => withReplayOpener(this.openFile, () => this.onFrame(frame))),
        () => {
          this.waiting--;
          this.waitingBytes -= frame.length;
          this.take();
        },
      );
    }
    // A frame completed: the next one, begun in this chunk, gets the whole partial-frame time (see below).
    if (took) this.restartPartialFrame();
    this.readMore();
  }

  /** Enough taken for now: frames waiting, their bytes, or output the client has not read. */
  private busy(): boolean {
    return this.waiting >= PENDING_FRAMES || this.waitingBytes >= PENDING_BYTES || this.full || this.replyCongested;
  }

  /** Reads on only while few frames wait and the client reads what it is sent. */
  private readMore(): void {
    if (this.closed || this.conn.destroyed) return;
    if (this.busy()) {
      this.conn.pause();
      // The client cannot finish a frame while we do not read: its clock stops too.
      clearTimeout(this.frameTimer);
      this.frameTimer = undefined;
    } else {
      this.conn.resume();
      this.watchPartialFrame();
    }
  }

  private hangUp(error: ErrorBody, why: string): void {
    this.reply({ v: PROTOCOL_VERSION, id: null, ok: false, error });
    this.conn.end();
    void this.shutdown(why);
  }

  /** The partial-frame clock starts over (a frame was completed: what is held now is a new one). */
  private restartPartialFrame(): void {
    clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
  }

  /**
   * A frame begun must end within partialFrameMs: a connection cannot hold a half-sent frame forever. The
   * clock runs from the first byte of the frame held, not of the first frame held since: a client whose
   * writes each end one frame and begin the next (buffered writers flushing at fixed sizes) is not cut off.
   */
  private watchPartialFrame(): void {
    if (this.reader.held === 0) {
      clearTimeout(this.frameTimer);
      this.frameTimer = undefined;
      return;
    }
    if (this.frameTimer) return;
    this.frameTimer = setTimeout(() => {
      this.d.stats.timedOutConnections++;
      this.hangUp(
        failure('FG_ERR_TIMEOUT', `frame not completed within ${this.d.timeouts.partialFrameMs} ms`),
        'partial frame timeout',
      );
    }, this.d.timeouts.partialFrameMs);
    this.frameTimer.unref();
  }

  /** Restarts the idle clock; a connection that holds nothing and says nothing is closed when it runs out. */
  touch(): void {
    clearTimeout(this.idleTimer);
    if (this.closed) return;
    this.idleTimer = setTimeout(() => {
      // Not idle: it holds something, or waits for us (requests running or queued). One we stopped reading
      // because it does not read its replies, holding nothing, is idle.
      if (this.flows.size > 0 || this.d.mux?.holds(this) || this.waiting > 0) return this.touch();
      this.d.stats.timedOutConnections++;
      this.hangUp(failure('FG_ERR_TIMEOUT', `idle for ${this.d.timeouts.idleMs} ms with nothing open`), 'idle timeout');
    }, this.d.timeouts.idleMs);
    this.idleTimer.unref();
  }

  private async onFrame(frame: Buffer): Promise<void> {
    let req: Request;
    try {
      const json: unknown = JSON.parse(frame.toString('utf8'));
      const r = Request.safeParse(json);
      if (!r.success) {
        const id = typeof (json as { id?: unknown })?.id === 'number' ? (json as { id: number }).id : null;
        this.reply({ v: PROTOCOL_VERSION, id, ok: false, error: failure('FG_ERR_PROTOCOL', issuesText(r.error)) });
        this.d.stats.badFrames++;
        return;
      }
      req = r.data;
    } catch {
      this.reply({ v: PROTOCOL_VERSION, id: null, ok: false, error: failure('FG_ERR_PROTOCOL', 'frame is not JSON') });
      this.d.stats.badFrames++;
      return;
    }
    try {
      this.reply({ v: PROTOCOL_VERSION, id: req.id, ok: true, ...(await handleRequest(this, req)) });
    } catch (err) {
      this.reply({ v: PROTOCOL_VERSION, id: req.id, ok: false, error: errorBody(err) });
    }
  }

  /** Closes one flow for the daemon's reasons (policy reload, new limits, a record it cannot send), telling the client why. */
  async closeFlow(f: RemoteFlow, reason: string, msg = 'flow closed by policy reload'): Promise<void> {
    if (f.closedByDaemon) return;
    f.closedByDaemon = true;
    lastWords(this, f, { v: PROTOCOL_VERSION, ev: 'closed', flow: f.id, reason });
    await f.handle.close();
    this.flows.delete(f.id);
    this.d.log('warn', msg, { client: this.cid, uid: this.peer.uid, flow: f.id, reason });
  }

  /** Re-checks every flow against a new policy; closes those it forbids or whose buffer is over its new limit. */
  async recheck(policy: Policy): Promise<void> {
    const principal = principalOf(policy, this.peer);
    this.d.mux?.recheck(this, principal);
    const maxBuffer = principal?.limits.bufferRecords;
    for (const f of [...this.flows.values()]) {
      const asked = f.handle.requested;
      if (!asked) continue; // not instantiated yet: the policy applies when it is
      const r = authorize(asked, this.peer, policy, { ...this.d.authContext(), openFlows: 0 });
      let reason: string;
      if (!r.allowed) reason = `the new policy denies it: ${r.issues.map((i) => i.message).join('; ')}`;
      else if (maxBuffer !== undefined && f.handle.stats().buffer.capacity > maxBuffer)
        reason = `its buffer (${f.handle.stats().buffer.capacity} records) is over the new limit of ${maxBuffer}; open it again`;
      else if (printGraph(r.graph) !== f.handle.graph) {
        // Still allowed, but the scope, redaction or rate limit changed: the running graph would show too much.
        reason = `the new policy changes what it may show (now runs as ${printGraph(r.graph)}); open it again`;
      } else continue;
      await this.closeFlow(f, reason);
    }
  }

  async shutdown(why: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Requests still waiting are dropped: run for nobody, they made flows and queue claims after the close
    // below (nft tables, workers and marks held until the daemon restarted, uncounted by the user's limits).
    this.requests.close();
    clearTimeout(this.frameTimer);
    clearTimeout(this.idleTimer);
    // Packets waiting for this client's verdicts are decided now, not at their timeout.
    this.d.mux?.release(this, why);
    if (why === 'not reading') this.conn.destroy();
    else if (!this.conn.destroyed) {
      // What is already queued (the reason for a hang-up) may still go; nothing more is accepted.
      this.conn.end();
      setTimeout(() => this.conn.destroy(), 1000).unref();
    }
    try {
      await this.fg.close();
    } catch (err) {
      this.d.log('error', 'client release failed', { client: this.cid, error: (err as Error).message });
    }
    this.flows.clear();
    this.d.forget(this);
    this.d.log('info', 'client gone', { client: this.cid, uid: this.peer.uid, why });
  }
}
