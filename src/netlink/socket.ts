/**
 * A netlink socket with requests and events on top of a RawTransport:
 * sequence numbers, multipart dumps collected until NLMSG_DONE, NLMSG_ERROR
 * turned into NetlinkOpError, multicast groups, loss counters, and an
 * idempotent close. Dumps/requests and event subscriptions should use
 * separate sockets (an event arriving mid-dump confuses neither here, but
 * the kernel interleaves them and a busy event stream slows the dump).
 */
import { DecodeError, FlowgrabError } from '../errors.js';
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
} from './enums.js';
import { errnoName } from './errno.js';
import { align4, decodeError, encodeMessage, frameProblem, messageAt, type NetlinkMessage } from './nlmsg.js';
import type { RawTransport, TransportFactory, TransportOptions } from './transport.js';

/** A request the kernel refused: the operation, the errno and its name, and the kernel's extended-ack text. */
export class NetlinkOpError extends FlowgrabError {
  readonly errnoName: string;
  readonly seq: number;
  readonly extAck?: string;
  constructor(op: string, errno: number, seq: number, extAck?: string) {
    const name = errnoName(errno);
    super(errno === 1 ? 'FG_ERR_PERMISSION' : 'FG_ERR_NETLINK', `${op}: ${name}${extAck ? ` (${extAck})` : ''}`, {
      op,
      errno,
    });
    this.errnoName = name;
    this.seq = seq;
    if (extAck) this.extAck = extAck;
  }
}

export interface RequestOptions {
  /** Name of the operation, for errors ("ctnetlink dump"). */
  op?: string;
  /** Called for each reply message as it arrives (large dumps); otherwise replies are collected. */
  onMessage?: (m: NetlinkMessage) => void;
  /**
   * Instead of onMessage: each reply read in place, `buf[start, end)` being
   * its payload (valid during the call only). No message object and no view
   * per reply, for the largest dumps.
   */
  onPayload?: PayloadListener;
  /** Fail when the kernel sends nothing for this long. Default 10 s. */
  idleTimeoutMs?: number;
}

interface Pending {
  op: string;
  dump: boolean;
  replies: NetlinkMessage[];
  onMessage?: (m: NetlinkMessage) => void;
  onPayload?: PayloadListener;
  resolve: (m: NetlinkMessage[]) => void;
  reject: (e: Error) => void;
  /** One idle check per request, re-armed only when it fires: replies just stamp `lastReply`. */
  timer: NodeJS.Timeout;
  idleMs: number;
  lastReply: number;
  interrupted: boolean;
  done?: boolean;
}

/** A reply's payload `buf[start, end)` with its header's type and flags (RequestOptions.onPayload). */
export type PayloadListener = (buf: Buffer, start: number, end: number, type: number, flags: number) => void;
export type EventListener = (m: NetlinkMessage, groups: number) => void;
/** An event read in place: its payload is `buf[start, end)` (valid during the call only), its header's type and flags. */
export type EventPayloadListener = (
  buf: Buffer,
  start: number,
  end: number,
  type: number,
  flags: number,
  groups: number,
) => void;
export type ErrorListener = (e: Error) => void;

let seqBase = (Date.now() & 0xffff) << 12;

export class NetlinkSocket {
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners = new Set<EventListener>();
  private readonly payloadListeners = new Set<EventPayloadListener>();
  private readonly errorListeners = new Set<ErrorListener>();
  private closed = false;
  /** Datagrams that arrived so far (whatever they held). */
  private arrived = 0;
  /** Runs once, when the next datagram arrives (a sleeping whileActive timer's wake-up). */
  private nextDatagram?: () => void;
  /** whileActive was called (one per socket: its wake-up is the socket's one nextDatagram). */
  private ticking = false;

  constructor(private readonly transport: RawTransport) {
    transport.setHandlers({
      datagram: (b, g, t, start, end) => this.onDatagram(b, g, t, start, end),
      error: (e) => this.emitError(e),
      waiting: () => this.pending.size > 0,
      abandoned: (e) => this.failPending(e),
    });
  }

  static open(opts: TransportOptions, factory: TransportFactory): NetlinkSocket {
    return new NetlinkSocket(factory(opts));
  }

  get port(): number {
    return this.transport.port;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends a request and resolves with its replies: for a dump (`NLM_F_DUMP`)
   * everything before NLMSG_DONE; otherwise whatever precedes the ACK, which
   * is always requested.
   */
  request(type: number, flags: number, payload: Buffer, opts: RequestOptions = {}): Promise<NetlinkMessage[]> {
    const op = opts.op ?? `netlink request ${type}`;
    if (this.closed) return Promise.reject(new FlowgrabError('FG_ERR_CLOSED', `${op}: socket closed`, { op }));
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const seq = this.nextSeq();
    const f = NLM_F_REQUEST | flags | (dump ? 0 : NLM_F_ACK);
    return new Promise((resolve, reject) => {
      const idleMs = opts.idleTimeoutMs ?? 10_000;
      const p: Pending = {
        op,
        dump,
        replies: [],
        onMessage: opts.onMessage,
        onPayload: opts.onPayload,
        resolve,
        reject,
        idleMs,
        lastReply: Date.now(),
        interrupted: false,
        timer: setTimeout(() => this.checkIdle(seq), idleMs),
      };
      this.pending.set(seq, p);
      try {
        this.transport.send(encodeMessage({ type, flags: f, seq, pid: 0 }, payload));
      } catch (err) {
        this.finish(seq, err as Error);
      }
    });
  }

  /** Sends without waiting for anything (verdicts, fire-and-forget config). Returns the sequence number. */
  send(type: number, flags: number, payload: Buffer): number {
    if (this.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'socket closed', { op: 'send' });
    const seq = this.nextSeq();
    this.transport.send(encodeMessage({ type, flags: NLM_F_REQUEST | flags, seq, pid: 0 }, payload));
    return seq;
  }

  /** Messages not answering a request of ours: multicast events, unicast packets (NFLOG, NFQUEUE). */
  onEvent(l: EventListener): () => void {
    this.eventListeners.add(l);
    return () => this.eventListeners.delete(l);
  }

  /**
   * Like onEvent, each event read in place: no message object and no Buffer
   * view per event (the hottest event streams). The bytes are valid during
   * the call only.
   */
  onEventPayload(l: EventPayloadListener): () => void {
    this.payloadListeners.add(l);
    return () => this.payloadListeners.delete(l);
  }

  onError(l: ErrorListener): () => void {
    this.errorListeners.add(l);
    return () => this.errorListeners.delete(l);
  }

  joinGroup(group: number): void {
    this.transport.addMembership(group);
  }

  leaveGroup(group: number): void {
    this.transport.dropMembership(group);
  }

  drops(): number {
    return this.transport.drops();
  }

  /**
   * Runs `work` every `everyMs` while datagrams arrive or `busy()` holds, and arms no timer otherwise: after a
   * run that saw neither since the last, the next datagram (before what it holds is handled) wakes it. So a
   * quiet socket wakes nothing, yet loss is never missed: the kernel drops only when the socket's queue is
   * full, and what the queue holds arrives next. One such timer per socket. Returns its stop.
   */
  whileActive(everyMs: number, work: () => void, busy: () => boolean = () => false): () => void {
    if (this.ticking) throw new Error('NetlinkSocket.whileActive: one per socket');
    this.ticking = true;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let seen = this.arrived;
    const arm = () => {
      if (stopped || timer) return;
      timer = setTimeout(run, everyMs);
      timer.unref();
    };
    const run = () => {
      timer = undefined;
      if (stopped) return;
      work();
      if (this.arrived !== seen || busy()) {
        seen = this.arrived;
        arm();
      } else this.nextDatagram = arm;
    };
    arm();
    return () => {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
    };
  }

  recvBufferSize(): number {
    return this.transport.recvBufferSize();
  }

  /**
   * Delivers, before returning, every datagram read so far that the transport still holds (RawTransport.
   * deliverPending): what reads the table after loss calls it first, so no event older than its view waits
   * behind it.
   */
  deliverPending(): void {
    if (!this.closed) this.transport.deliverPending?.();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failPending(new FlowgrabError('FG_ERR_CLOSED', 'socket closed during request', { op: 'close' }));
    this.eventListeners.clear();
    this.payloadListeners.clear();
    this.transport.close();
  }

  /** Fails every request waiting with `err`. */
  private failPending(err: Error): void {
    for (const seq of [...this.pending.keys()]) this.finish(seq, err);
  }

  private nextSeq(): number {
    seqBase = (seqBase + 1) >>> 0 || 1;
    return seqBase;
  }

  /** Fails the request after `idleMs` without a reply; otherwise looks again when that much quiet could have passed. */
  private checkIdle(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    const quiet = Date.now() - p.lastReply;
    if (quiet >= p.idleMs) {
      this.finish(seq, new FlowgrabError('FG_ERR_TIMEOUT', `${p.op}: no reply in ${p.idleMs} ms`, { op: p.op }));
    } else {
      p.timer = setTimeout(() => this.checkIdle(seq), p.idleMs - quiet);
    }
  }

  private finish(seq: number, err?: Error): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    p.done = true;
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(p.replies);
  }

  private emitError(e: Error): void {
    for (const l of this.errorListeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not stop the others, nor reach the native callback.
      }
    }
  }

  /**
   * A message of a transient datagram (its buffer is reused after the call) that outlives the call: a copy of
   * its own. Buffer#copy is a memcpy; Buffer.from(a Uint8Array) copies element by element, slower still from
   * the receive worker's shared ring.
   */
  private static kept(buf: Buffer, o: number, transient: boolean): NetlinkMessage {
    if (!transient) return messageAt(buf, o);
    const len = buf.readUInt32LE(o);
    const own = Buffer.allocUnsafe(len);
    buf.copy(own, 0, o, o + len);
    return messageAt(own, 0);
  }

  /** The datagram `buf[start, end)`. */
  private onDatagram(buf: Buffer, groups: number, transient = false, start = 0, end = buf.length): void {
    this.arrived++;
    if (this.nextDatagram !== undefined) {
      const fn = this.nextDatagram;
      this.nextDatagram = undefined;
      fn();
    }
    // The valid messages are delivered even when garbage follows them (as libmnl does); the garbage is reported.
    let valid = start;
    let problem: string | undefined;
    while (valid < end && (problem = frameProblem(buf, valid, end)) === undefined) {
      valid += align4(buf.readUInt32LE(valid));
    }
    if (problem) {
      this.emitError(new DecodeError(`${problem}; ${end - valid} bytes dropped`, valid - start, 'nlmsg'));
    }
    // A dump datagram holds many replies to one request: look it up once, stamp it once.
    let last: Pending | undefined;
    let lastSeq = -1;
    for (let o = start; o < valid; o += align4(buf.readUInt32LE(o))) {
      const seq = buf.readUInt32LE(o + 8);
      let p: Pending | undefined;
      if (groups === 0 && seq !== 0) {
        if (seq !== lastSeq) {
          lastSeq = seq;
          last = this.pending.get(seq);
          if (last) last.lastReply = Date.now();
        }
        p = last;
      }
      const type = buf.readUInt16LE(o + 4);
      if (p && !p.done) {
        if (p.onPayload && type !== NLMSG_ERROR && type !== NLMSG_DONE) this.onPayload(seq, p, buf, o, type);
        else this.onReply(seq, p, NetlinkSocket.kept(buf, o, transient));
      } else if (type !== NLMSG_NOOP && type !== NLMSG_OVERRUN) {
        if (this.payloadListeners.size > 0) this.emitPayload(buf, o, type, groups);
        if (this.eventListeners.size > 0) this.emitEvent(NetlinkSocket.kept(buf, o, transient), groups);
      }
    }
  }

  /** A data reply (not ERROR, not DONE) to a request read in place. */
  private onPayload(seq: number, p: Pending, buf: Buffer, o: number, type: number): void {
    const flags = buf.readUInt16LE(o + 6);
    if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
    try {
      p.onPayload?.(buf, o + NLMSG_HDRLEN, o + buf.readUInt32LE(o), type, flags);
    } catch (err) {
      this.finish(seq, err as Error);
    }
  }

  private emitPayload(buf: Buffer, o: number, type: number, groups: number): void {
    const flags = buf.readUInt16LE(o + 6);
    const end = o + buf.readUInt32LE(o);
    for (const l of this.payloadListeners) {
      try {
        l(buf, o + NLMSG_HDRLEN, end, type, flags, groups);
      } catch (err) {
        this.emitError(err as Error);
      }
    }
  }

  private emitEvent(m: NetlinkMessage, groups: number): void {
    for (const l of this.eventListeners) {
      try {
        l(m, groups);
      } catch (err) {
        this.emitError(err as Error);
      }
    }
  }

  private onReply(seq: number, p: Pending, m: NetlinkMessage): void {
    if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
    if (m.type === NLMSG_ERROR) {
      try {
        const e = decodeError(m);
        if (e.errno === 0) this.finish(seq);
        else this.finish(seq, new NetlinkOpError(p.op, e.errno, seq, e.extAckMessage));
      } catch (err) {
        this.finish(seq, err as Error);
      }
      return;
    }
    if (m.type === NLMSG_DONE) {
      const errno = m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0;
      if (errno > 0) this.finish(seq, new NetlinkOpError(p.op, errno, seq));
      else if (p.interrupted)
        this.finish(seq, new NetlinkOpError(`${p.op} (interrupted: table changed, retry)`, 4, seq));
      else this.finish(seq);
      return;
    }
    if (p.onMessage) {
      try {
        p.onMessage(m);
      } catch (err) {
        this.finish(seq, err as Error);
      }
    } else {
      p.replies.push(m);
    }
  }
}

/**
 * Messages the kernel dropped on `sock` since the last call (0 when the socket is gone). The kernel's count
 * (sk_drops, read as a u32) wraps past 2^32 - 1: the difference is taken modulo 2^32, so a wrap between two
 * calls counts what was dropped across it. A closed socket or transport reads 0: a reading of 0 counts
 * nothing and is not kept (a wrap that lands on 0 exactly is counted at the next reading).
 */
export class DropCounter {
  private last = 0;

  constructor(private readonly sock: NetlinkSocket) {}

  take(): number {
    if (this.sock.isClosed) return 0;
    let now: number;
    try {
      now = this.sock.drops();
    } catch {
      return 0; // closed under us
    }
    if (now === 0) return 0;
    const lost = (now - this.last) >>> 0;
    this.last = now;
    return lost;
  }
}
