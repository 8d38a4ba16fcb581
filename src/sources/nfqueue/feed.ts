/**
 * One NFQUEUE reader per (netns, queue): binds the queue, turns queued
 * packets into QueuedPackets, sends verdicts, gives the default verdict to
 * packets nobody decided in time, accounts for loss, and owns the optional
 * iptables rules. Closing decides every pending packet before unbinding:
 * the kernel drops whatever is still queued when its reader goes.
 */
import { FlowgrabError } from '../../errors.js';
import { NETLINK_NETFILTER, NLMSG_ERROR } from '../../netlink/enums.js';
import { errnoName } from '../../netlink/errno.js';
import { readerGone } from '../../netlink/fd-transport.js';
import {
  NFQUEUE_CONFIG_TYPE,
  NFQUEUE_VERDICT_BATCH_TYPE,
  NFQUEUE_VERDICT_TYPE,
  nfqBind,
  nfqFlags,
  nfqMaxLen,
  nfqParams,
  nfqUnbind,
} from '../../netlink/nfqueue/config.js';
import * as Q from '../../netlink/nfqueue/enums.js';
import { decodeNfqPacket, NFQUEUE_PACKET_TYPE, type NfqPacket, peekNfqPacketId } from '../../netlink/nfqueue/packet.js';
import { decodeError, type NetlinkMessage } from '../../netlink/nlmsg.js';
import { NetlinkOpError, NetlinkSocket } from '../../netlink/socket.js';
import type { RawTransport, TransportFactory } from '../../netlink/transport.js';
import { Subject } from '../../rx.js';
import { Fanout } from '../fanout.js';
import { IptablesQueueRules } from '../firewall/iptables.js';
import { publishNotice, type SourceNotice } from '../notice.js';
import { VerdictBook } from './book.js';
import { toPacketRecord } from './decode.js';
import { IfNames } from './ifnames.js';
import { LossMeter } from './loss.js';
import { defaultRecvBuffer, type NfqueueConfig, type VerdictName } from './options.js';
import { VerdictOutbox } from './outbox.js';
import { readQueueStats } from './proc.js';
import { type QueuedPacket, queuedPacket, type VerdictOptions, type VerdictTarget, verdictCode } from './queued.js';

export class NfqueueFeed implements VerdictTarget {
  readonly packets = new Fanout<QueuedPacket>();
  readonly notices = new Subject<SourceNotice>();
  readonly ready: Promise<void>;
  private readonly raw: RawTransport;
  private readonly sock: NetlinkSocket;
  private readonly outbox: VerdictOutbox;
  private readonly book = new VerdictBook();
  private readonly names?: IfNames;
  /** Stops the ticks (tick()). */
  private readonly stopTicks: () => void;
  private readonly where: string;
  private rules?: IptablesQueueRules;
  private closing?: Promise<void>;
  private readonly loss: LossMeter;

  /** `after`: the teardown of a previous reader of this queue, which must unbind before we bind. */
  constructor(
    readonly cfg: NfqueueConfig,
    transport: TransportFactory,
    after: Promise<void> = Promise.resolve(),
  ) {
    this.where = `queue ${cfg.queue}${cfg.netns ? ` in ${cfg.netns}` : ''}`;
    // Whole packets can be large: read each datagram at its exact size.
    const buffer = cfg.recvBufferBytes ?? defaultRecvBuffer(cfg);
    this.raw = transport({
      protocol: NETLINK_NETFILTER,
      netns: cfg.netns,
      recvBufferBytes: buffer,
      peek: true,
      batched: cfg.batchedReceive,
      // Each packet waits in the kernel for our verdict: no lingering for company, and no more read ahead
      // than the socket buffer holds (beyond it fail-open decides, as with a reader on the main thread).
      lingerMs: 0,
      readAheadBytes: buffer,
    });
    this.sock = new NetlinkSocket(this.raw);
    // Verdicts bypass NetlinkSocket.send so that many share one datagram (seq 0: nothing waits for a reply).
    this.outbox = new VerdictOutbox((datagram) => {
      try {
        this.raw.send(datagram);
      } catch (err) {
        this.notice({ kind: 'warning', message: `verdicts on ${this.where} not sent: ${(err as Error).message}` });
      }
    });
    this.sock.onEvent((m) => this.onMessage(m));
    this.sock.onError((err) =>
      readerGone(err)
        ? this.packets.error(err)
        : this.notice({ kind: 'warning', message: `nfqueue socket: ${err.message}` }),
    );
    this.loss = new LossMeter(
      cfg,
      this.where,
      (n) => this.notice(n),
      () => this.sock.drops(),
      this.raw.port,
    );
    if (cfg.interfaceNames) this.names = new IfNames(cfg.netns);
    // Verdict timeouts and loss, while packets wait for verdicts or datagrams arrive: the kernel drops only when
    // the queue is full (its packets wait for us) or the socket is (its datagrams come next).
    this.stopTicks = this.sock.whileActive(
      Math.max(10, Math.min(250, cfg.verdictTimeoutMs >> 2)),
      () => this.tick(),
      () => this.book.pending.size > 0,
    );
    this.ready = this.setup(after);
    this.ready.catch(() => {}); // surfaced to subscribers by source.ts
  }

  private async setup(after: Promise<void>): Promise<void> {
    await after.catch(() => {});
    const q = this.cfg.queue;
    const config = (payload: Buffer, what: string) =>
      this.sock.request(NFQUEUE_CONFIG_TYPE, 0, payload, { op: `nfqueue ${what} (${this.where})` });
    try {
      await config(nfqBind(q), 'bind');
    } catch (err) {
      if (err instanceof NetlinkOpError && err.errnoName === 'EPERM') {
        const holder = readQueueStats(q, undefined, this.cfg.netns)?.portid;
        const other = holder === undefined ? '' : ` (netlink port ${holder})`;
        throw new FlowgrabError(
          'FG_ERR_BUSY',
          `NFQUEUE queue ${q} is already bound by another reader in ${this.cfg.netns ?? 'this network namespace'}${other}`,
          { op: 'nfqueue bind', cause: err },
        );
      }
      throw err;
    }
    const mode = this.cfg.copyRange === 0 ? Q.NFQNL_COPY_META : Q.NFQNL_COPY_PACKET;
    await config(nfqParams(q, this.cfg.copyRange, mode), 'copy mode');
    await config(nfqMaxLen(q, this.cfg.maxLen), 'queue length');
    const flags = (this.cfg.failOpen ? Q.NFQA_CFG_F_FAIL_OPEN : 0) | Q.NFQA_CFG_F_UID_GID;
    await config(nfqFlags(q, flags, Q.NFQA_CFG_F_FAIL_OPEN | Q.NFQA_CFG_F_UID_GID), 'flags');
    const need = defaultRecvBuffer(this.cfg);
    if (this.cfg.recvBufferBytes !== undefined && this.cfg.recvBufferBytes < need) {
      this.notice({
        kind: 'warning',
        message: `recvBufferBytes ${this.cfg.recvBufferBytes} cannot hold maxLen ${this.cfg.maxLen} packets of ${this.cfg.copyRange} bytes (~${need}): overflow ${this.cfg.failOpen ? 'passes without a verdict' : 'is dropped'}`,
      });
    }
    await this.names?.load();
    if (this.cfg.rules && !this.closing) {
      const r = this.cfg.rules;
      this.rules = await IptablesQueueRules.install({ queue: q, netns: this.cfg.netns, ...r });
    }
  }

  /** Refused (throws) for a packet already decided, or never delivered. */
  verdict(packetId: number, verdict: VerdictName, opts?: VerdictOptions): void {
    const code = verdictCode(verdict, opts);
    if (this.closing) this.refuse(packetId, 'the queue is closed and every pending packet got the default verdict');
    const got = this.book.take(packetId, verdict);
    if (got !== 'pending') this.refuseTake(packetId, got);
    this.send(NFQUEUE_VERDICT_TYPE, packetId, code, opts?.mark);
  }

  /** One verdict for every pending packet with an id ≤ `upTo`; returns how many it decided. */
  verdictBatch(upTo: number, verdict: VerdictName, opts?: VerdictOptions): number {
    const code = verdictCode(verdict, opts);
    if (this.closing) this.refuse(upTo, 'the queue is closed and every pending packet got the default verdict');
    if (this.book.beyond(upTo)) this.refuseTake(upTo, 'unknown');
    const n = this.book.takeUpTo(upTo, `${verdict} (batch)`);
    if (n > 0) this.send(NFQUEUE_VERDICT_BATCH_TYPE, upTo, code, opts?.mark);
    return n;
  }

  get pendingCount(): number {
    return this.book.pending.size;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stopTicks();
    this.packets.complete();
    this.decidePending('closing');
    await this.ready.catch(() => {});
    // Rules first, so nothing new is queued; what arrives meanwhile is decided on arrival.
    try {
      await this.rules?.remove();
    } catch (err) {
      this.notice({ kind: 'warning', message: (err as Error).message });
    }
    this.decidePending('closing');
    this.outbox.flush();
    try {
      await this.sock.request(NFQUEUE_CONFIG_TYPE, 0, nfqUnbind(this.cfg.queue), {
        op: `nfqueue unbind (${this.where})`,
        idleTimeoutMs: 2000,
      });
    } catch {
      // Not bound (setup failed) or already gone: closing the socket unbinds anyway.
    }
    this.outbox.flush(); // verdicts for packets that arrived during the unbind: the socket is still open
    this.sock.close();
    this.notices.complete();
  }

  private refuse(id: number, why: string): never {
    throw new FlowgrabError('FG_ERR_INVALID_STATE', `verdict for packet ${id} on ${this.where} refused: ${why}`, {
      op: 'nfqueue verdict',
    });
  }

  private refuseTake(id: number, got: 'decided' | 'unknown'): never {
    if (got === 'decided') this.refuse(id, `it already had a verdict (${this.book.howDecided(id)})`);
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `verdict for packet ${id} on ${this.where} refused: no such packet was delivered${this.book.beyond(id) ? '' : ' (or its verdict is long past)'}`,
      { op: 'nfqueue verdict' },
    );
  }

  private send(type: number, id: number, verdict: number, mark?: number): void {
    this.outbox.push(
      type,
      mark === undefined ? { queue: this.cfg.queue, verdict, id } : { queue: this.cfg.queue, verdict, id, mark },
    );
  }

  private defaultCode(): number {
    return this.cfg.defaultVerdict === 'drop' ? Q.NF_DROP : Q.NF_ACCEPT;
  }

  /** Default verdict for every pending packet, in one batch message. */
  private decidePending(how: string): number {
    const last = this.book.lastPending();
    if (last === undefined) return 0;
    const n = this.book.takeUpTo(last, `default ${this.cfg.defaultVerdict}, ${how}`);
    this.send(NFQUEUE_VERDICT_BATCH_TYPE, last, this.defaultCode());
    return n;
  }

  private notice(n: Omit<SourceNotice, 'source' | 'ts'>): void {
    const full: SourceNotice = { source: 'nfqueue', ts: Date.now(), ...n };
    if (this.cfg.netns) full.netns = this.cfg.netns;
    publishNotice(full, this.notices);
  }

  private onMessage(m: NetlinkMessage): void {
    if (m.type === NLMSG_ERROR) {
      this.onKernelError(m);
      return;
    }
    if (m.type !== NFQUEUE_PACKET_TYPE) return;
    const now = Date.now();
    let p: NfqPacket;
    try {
      p = decodeNfqPacket(m.payload);
    } catch (err) {
      const id = peekNfqPacketId(m.payload);
      this.notice({
        kind: 'loss',
        where: 'decode',
        count: 1,
        message: `undecodable NFQUEUE message: ${(err as Error).message}`,
      });
      // Still queued in the kernel: give it the default verdict rather than leave it to time out.
      if (id !== undefined) {
        this.book.arrive(id, performance.now());
        this.book.take(id, `default ${this.cfg.defaultVerdict}, undecodable`);
        this.send(NFQUEUE_VERDICT_TYPE, id, this.defaultCode());
      }
      return;
    }
    // Arrival on the monotonic clock: the timeout sweep takes a prefix, and a wall clock stepped back would stop it.
    if (this.book.arrive(p.id, performance.now()) > 0) this.loss.check(this.book.gapLoss);
    if (this.closing) {
      this.book.take(p.id, `default ${this.cfg.defaultVerdict}, closing`);
      this.send(NFQUEUE_VERDICT_TYPE, p.id, this.defaultCode());
      return;
    }
    this.loss.checkFull(this.book.pending.size);
    this.packets.next(queuedPacket(toPacketRecord(p, now, this.names?.lookup, this.cfg.netns), this));
  }

  private onKernelError(m: NetlinkMessage): void {
    try {
      const e = decodeError(m);
      if (e.errno === 0) return;
      const what = e.request.type === NFQUEUE_CONFIG_TYPE ? 'a queue setting' : 'a verdict';
      this.notice({ kind: 'warning', message: `the kernel refused ${what} on ${this.where}: ${errnoName(e.errno)}` });
    } catch {
      // A malformed error message tells us nothing to act on.
    }
  }

  private tick(): void {
    const cutoff = performance.now() - this.cfg.verdictTimeoutMs;
    const upTo = this.book.expiredUpTo(cutoff);
    if (upTo !== undefined) {
      const n = this.book.takeUpTo(upTo, `default ${this.cfg.defaultVerdict} after ${this.cfg.verdictTimeoutMs} ms`);
      this.send(NFQUEUE_VERDICT_BATCH_TYPE, upTo, this.defaultCode());
      this.notice({
        kind: 'warning',
        count: n,
        message: `${n} packet(s) on ${this.where} got no verdict within ${this.cfg.verdictTimeoutMs} ms: default ${this.cfg.defaultVerdict}`,
      });
    }
    this.loss.checkFull(this.book.pending.size);
    this.loss.check(this.book.gapLoss);
  }
}
