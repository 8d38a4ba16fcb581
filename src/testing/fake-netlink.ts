/**
 * A fake kernel behind the RawTransport seam (docs/architecture.md#fake-seam): sources and
 * sockets above the adapter run against it in unit tests exactly as against
 * the real kernel. The test scripts the kernel's side: answers to requests,
 * multicast events, drop counts.
 */
import { FlowgrabError } from '../errors.js';
import { NLM_F_MULTI, NLMSG_DONE, NLMSG_NOOP } from '../netlink/enums.js';
import { encodeError, encodeMessage, type NetlinkMessage, splitMessages } from '../netlink/nlmsg.js';
import type { RawTransport, TransportFactory, TransportHandlers, TransportOptions } from '../netlink/transport.js';

export type RequestHandler = (req: NetlinkMessage, sock: FakeSocket) => Buffer[] | undefined;

let nextPort = 0x7000_0000;

export class FakeSocket implements RawTransport {
  readonly port = nextPort++;
  readonly groups = new Set<number>();
  readonly sent: NetlinkMessage[] = [];
  /** What `drops()` reports (overflow() adds to it and delivers, as the kernel would). */
  dropCount = 0;
  /** How often `drops()` was read (a loss check's work). */
  dropReads = 0;
  closed = false;
  private handlers: TransportHandlers = { datagram: () => {}, error: () => {} };

  constructor(
    readonly kernel: FakeKernel,
    readonly options: TransportOptions,
  ) {}

  /** Where received messages and errors go (the transport seam). */
  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }

  /** A message from the code under test to the fake kernel. */
  send(buf: Buffer): void {
    if (this.closed) throw new Error('fake socket closed');
    for (const m of splitMessages(buf)) {
      this.sent.push(m);
      const replies = this.kernel.handler?.(m, this) ?? [];
      for (const r of replies) this.deliver(r, 0);
    }
  }

  /** Delivers a datagram on a later tick, as the kernel would. */
  deliver(buf: Buffer, groups: number): void {
    this.later(() => this.handlers.datagram(buf, groups));
  }

  /**
   * The socket's queue overflowed: `n` more messages dropped (what `drops()` reports). As from the kernel, where
   * a drop needs a full queue, what the queue held arrives next: a NOOP datagram stands for it here.
   */
  overflow(n: number): void {
    this.dropCount += n;
    this.deliver(encodeMessage({ type: NLMSG_NOOP, flags: 0, seq: 0, pid: 0 }, Buffer.alloc(0)), 0);
  }

  /**
   * A datagram read but held back, as a batched reader holds what it read past its turn: it reaches the owner
   * when the owner asks for pending datagrams (deliverPending), or when the test calls releaseHeldBack().
   */
  holdBack(buf: Buffer, groups: number): void {
    this.heldBack.push([buf, groups]);
  }

  /** Delivers the held-back datagrams on a later tick (the reader's next turn). */
  releaseHeldBack(): void {
    const h = this.heldBack.splice(0);
    for (const [b, g] of h) this.deliver(b, g);
  }

  /** Delivers the held-back datagrams now, in order (RawTransport.deliverPending). */
  deliverPending(): void {
    for (const [b, g] of this.heldBack.splice(0)) if (!this.closed) this.handlers.datagram(b, g);
  }

  private readonly heldBack: [Buffer, number][] = [];

  /** Reports a receive error (e.g. ENOBUFS) to the socket's owner. */
  fail(err: Error): void {
    this.later(() => this.handlers.error(err));
  }

  /** Reports a receive error after which replies may be lost (a failed read): the requests waiting fail with it. */
  abandon(err: Error): void {
    this.later(() => {
      this.handlers.abandoned?.(err);
      this.handlers.error(err);
    });
  }

  /** Runs `f` on a later tick unless the socket closed meanwhile; counted in `kernel.pending` until then. */
  private later(f: () => void): void {
    this.kernel.pending++;
    setImmediate(() => {
      this.kernel.pending--;
      if (!this.closed) f();
    });
  }

  /** Joins a multicast group (recorded for assertions). */
  addMembership(group: number): void {
    this.groups.add(group);
  }
  /** Leaves a multicast group. */
  dropMembership(group: number): void {
    this.groups.delete(group);
  }
  drops(): number {
    this.dropReads++;
    return this.dropCount;
  }
  recvBufferSize(): number {
    return (this.options.recvBufferBytes ?? 212992) * 2;
  }
  /** Closes the fake socket. */
  close(): void {
    this.closed = true;
  }
}

export class FakeKernel {
  readonly sockets: FakeSocket[] = [];
  handler?: RequestHandler;

  readonly transport: TransportFactory = (opts) => {
    const s = new FakeSocket(this, opts);
    this.sockets.push(s);
    return s;
  };

  /** Sends a datagram to every open socket that joined `group` (1-based, as the kernel numbers them). */
  multicast(group: number, datagram: Buffer): number {
    let n = 0;
    for (const s of this.sockets) {
      if (s.closed || !s.groups.has(group)) continue;
      s.deliver(datagram, 1 << (group - 1));
      n++;
    }
    return n;
  }

  get openSockets(): FakeSocket[] {
    return this.sockets.filter((s) => !s.closed);
  }

  /** Datagrams and errors handed to sockets but not yet to their owners. */
  pending = 0;

  /** Requests the sockets sent so far, all sockets together. */
  get requestCount(): number {
    return this.sockets.reduce((n, s) => n + s.sent.length, 0);
  }

  /**
   * Waits for a fact: resolves once `fact()` holds, checked after every turn
   * of the event loop; throws FG_ERR_TIMEOUT naming `what` when it still
   * does not after `timeoutMs` (generous: a loaded machine is slow, not wrong).
   */
  async until(fact: () => boolean, opts: { timeoutMs?: number; what?: string } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? WAIT_MS;
    const deadline = Date.now() + timeoutMs;
    while (!fact()) {
      if (Date.now() > deadline) {
        throw new FlowgrabError(
          'FG_ERR_TIMEOUT',
          `fake kernel: ${opts.what ?? 'the awaited fact'} not seen within ${timeoutMs} ms`,
        );
      }
      // A datagram on its way is the next fact to come: let it land; otherwise give timers (loss checks) a turn.
      await (this.pending > 0 ? nextTurn() : sleep(1));
    }
  }

  /** Waits until the sockets together sent at least `n` requests (config, dumps), e.g. a source's setup. */
  requests(n: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.requestCount >= n, { timeoutMs, what: `${n} requests (${this.requestCount} sent)` });
  }

  /**
   * Waits until the kernel is quiet: every datagram it delivered was handled,
   * and handling them sent nothing that is still on its way (a reply to a
   * request, a dump the source asked for in turn). Facts that depend on a
   * source's timers need until().
   */
  async settle(timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let quietTurns = 0; quietTurns < 2; ) {
      if (Date.now() > deadline) {
        throw new FlowgrabError(
          'FG_ERR_TIMEOUT',
          `fake kernel: still delivering after ${timeoutMs} ms (${this.pending} pending)`,
        );
      }
      const before = this.requestCount;
      await nextTurn();
      quietTurns = this.pending === 0 && this.requestCount === before ? quietTurns + 1 : 0;
    }
  }
}

/** How long until() and settle() wait by default: generous for a busy machine, under the unit tests' 30 s limit. */
const WAIT_MS = 15_000;
const nextTurn = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One datagram holding a multipart reply to `req`: each payload as a message with NLM_F_MULTI, then NLMSG_DONE. */
export function dumpReply(req: NetlinkMessage, type: number, payloads: Buffer[]): Buffer {
  const msgs = payloads.map((p) => encodeMessage({ type, flags: NLM_F_MULTI, seq: req.seq, pid: 0 }, p));
  msgs.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: req.seq, pid: 0 }, Buffer.alloc(4)));
  return Buffer.concat(msgs);
}

/** The NLMSG_ERROR answering `req`: an ACK with errno 0, a refusal otherwise. */
export function ackReply(req: NetlinkMessage, errno = 0): Buffer {
  return encodeError({ type: 0, flags: 0, seq: req.seq, pid: 0 }, errno, req);
}
