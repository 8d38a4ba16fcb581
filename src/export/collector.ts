/**
 * IPFIX and NetFlow v9 sinks: flows are encoded as they arrive and the
 * messages go to a collector over UDP (connected, so an ICMP port
 * unreachable shows up as ECONNREFUSED on a later send) or TCP (IPFIX only;
 * templates once per connection, reconnect with backoff, a bounded queue of
 * records meanwhile). A collector that is down costs records, which are
 * counted; the sink keeps going and recovers when the collector returns.
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, type Socket as TcpSocket, connect as tcpConnect } from 'node:net';
import { uptime } from 'node:os';
import { FlowgrabError } from '../errors.js';
import { parseHostPort } from './address.js';
import type { EncoderOptions, MessageEncoder } from './encoder.js';
import { asExportFlow, type ExportFlow } from './flow.js';
import { IpfixEncoder } from './ipfix.js';
import { Netflow9Encoder } from './netflow9.js';
import { emptyStats, type FlowSink, type SinkStats } from './sink.js';

export interface CollectorOptions extends EncoderOptions {
  /** HOST:PORT or [IPv6]:PORT. */
  collector: string;
  /** Records held while a TCP connection is down or backed up (default 10 000); beyond that they are dropped. */
  queueRecords?: number;
  /** Longest wait between TCP reconnect attempts (default 5 s). */
  maxReconnectMs?: number;
  /**
   * A message that is not full yet goes out at most this long after its first record (default 100 ms):
   * flows ending a few at a time still share datagrams, and each datagram costs a send.
   */
  maxDelayMs?: number;
  /** UDP: after the collector refused a datagram (ICMP port unreachable), records are counted as dropped, not sent, for this long (default 1000 ms). */
  unreachableHoldMs?: number;
}

export interface IpfixSinkOptions extends CollectorOptions {
  transport?: 'udp' | 'tcp';
  observationDomainId?: number;
  biflow?: boolean;
  /** The exporter options record (systemInitTimeMilliseconds, totals) with the templates; default off. */
  exporterInfo?: boolean;
}

export interface Netflow9SinkOptions extends CollectorOptions {
  sourceId?: number;
}

/** When the OS booted (ms since the epoch): exporter uptime counts from it, so no flow predates it. */
export function systemBootMs(): number {
  return Date.now() - uptime() * 1000;
}

interface Transport {
  send(msg: Buffer, records: number): void;
  ready(): boolean;
  idle(): Promise<void>;
  close(): Promise<void>;
}

abstract class CollectorSink implements FlowSink {
  abstract readonly kind: string;
  protected readonly st = emptyStats();
  protected encoder!: MessageEncoder;
  protected transport!: Transport;
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  protected maxDelayMs = 100;

  write(record: unknown): void {
    this.st.received++;
    if (this.closed) {
      this.drop(1, 'sink closed');
      return;
    }
    const f = asExportFlow(record);
    if (!f) {
      this.reject('not a flow: an ExportFlow or a conntrack record with counters is needed');
      return;
    }
    if (!this.transport.ready()) {
      this.enqueue(f);
      return;
    }
    this.encode(f);
  }

  protected encode(f: ExportFlow): void {
    try {
      this.encoder.add(f);
    } catch (err) {
      this.reject((err as Error).message);
      return;
    }
    // Full messages go out as they fill; the rest waits a little for company.
    if (this.flushTimer === undefined) this.flushTimer = setTimeout(this.timedFlush, this.maxDelayMs);
  }

  private readonly timedFlush = () => {
    this.flushTimer = undefined;
    this.encoder.flush();
  };

  protected setMaxDelay(ms: number | undefined): void {
    const v = ms ?? 100;
    if (!Number.isFinite(v) || v < 0)
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `maxDelayMs must be a number of ms ≥ 0, got ${v}`);
    this.maxDelayMs = v;
  }

  protected enqueue(_f: ExportFlow): void {
    this.drop(1, 'collector not reachable');
  }

  protected reject(message: string): void {
    this.st.rejected++;
    this.st.lastError = message;
  }

  protected drop(records: number, message: string): void {
    this.st.dropped += records;
    this.st.lastError = message;
  }

  async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.encoder.flush();
    await this.transport.idle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.transport.close();
  }

  stats(): SinkStats {
    return { ...this.st, templates: this.encoder.counts.templates };
  }
}

/** Resolves a host name once; the socket family follows the address. */
async function resolve(host: string): Promise<{ address: string; family: 4 | 6 }> {
  if (isIP(host)) return { address: host, family: isIP(host) as 4 | 6 };
  const r = await lookup(host);
  return { address: r.address, family: r.family as 4 | 6 };
}

/**
 * Connected UDP. The kernel reports an ICMP port unreachable as ECONNREFUSED
 * on the socket, once, for some earlier datagram (and rate-limits the ICMP),
 * so loss cannot be known per datagram: a refusal moves the last datagram's
 * records from sent to dropped, and for `holdMs` records are counted as
 * dropped instead of being sent into the void; then sending resumes, with
 * templates first.
 */
class UdpTransport implements Transport {
  private sock?: UdpSocket;
  private downUntil = 0;
  private lastRecords = 0;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private pending: { msg: Buffer; records: number }[] = [];
  private closing = false;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly st: SinkStats,
    private readonly onSendError: () => void,
    private readonly holdMs = 1000,
  ) {
    void this.open();
  }

  private async open(): Promise<void> {
    try {
      const { address, family } = await resolve(this.target.host);
      const s = createSocket(family === 6 ? 'udp6' : 'udp4');
      s.on('error', (err) => this.refused(err));
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.connect(this.target.port, address, () => {
          s.off('error', rej);
          res();
        });
      });
      this.sock = s;
      if (this.closing) {
        s.close();
        return;
      }
      const queued = this.pending;
      this.pending = [];
      for (const p of queued) this.send(p.msg, p.records);
    } catch (err) {
      for (const p of this.pending) this.failed(err as Error, p.records);
      this.pending = [];
      this.settle();
      if (!this.closing) setTimeout(() => void this.open(), 1000).unref();
    }
  }

  ready(): boolean {
    return true;
  }

  /** An error seen by the receive side: the collector refused an earlier datagram. */
  private refused(err: Error): void {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
      const n = Math.min(this.lastRecords, this.st.sent);
      this.st.sent -= n;
      this.lastRecords = 0;
      this.failed(err, n);
    } else this.failed(err, 0);
  }

  send(msg: Buffer, records: number): void {
    const s = this.sock;
    if (Date.now() < this.downUntil) {
      this.st.dropped += records;
      // Templates in a message not sent must go again in the next one.
      this.onSendError();
      return;
    }
    if (!s) {
      // Until connect completes (a few µs; longer when a name is being resolved): bounded.
      if (this.pending.length < 1024) this.pending.push({ msg, records });
      else this.failed(new Error('collector socket not ready'), records);
      return;
    }
    this.inflight++;
    s.send(msg, (err) => {
      this.inflight--;
      if (err) this.failed(err, records);
      else {
        this.st.sent += records;
        this.st.messages++;
        this.lastRecords = records;
      }
      this.settle();
    });
  }

  private failed(err: Error, records: number): void {
    this.st.errors++;
    this.st.dropped += records;
    this.st.lastError = `send to ${this.target.host}:${this.target.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') this.downUntil = Date.now() + this.holdMs;
    // The collector may have lost our templates (or never had them): the next message carries them.
    this.onSendError();
  }

  private settle(): void {
    if (this.inflight > 0 || this.pending.length > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  idle(): Promise<void> {
    // Pending messages wait for the socket to connect (a failed connect drops and settles them).
    if (this.inflight === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.idle();
    const s = this.sock;
    this.sock = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** IPFIX over TCP: one transport session per connection; records wait in a bounded queue while it is down. */
class TcpTransport implements Transport {
  private sock?: TcpSocket;
  private connected = false;
  private blocked = false;
  private closing = false;
  private backoff = 100;
  private timer?: NodeJS.Timeout;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly target: { host: string; port: number },
    private readonly st: SinkStats,
    private readonly maxBackoff: number,
    private readonly on: { connect(): void; drain(): void },
  ) {
    this.connect();
  }

  private connect(): void {
    this.timer = undefined;
    if (this.closing) return;
    const s = tcpConnect({ host: this.target.host, port: this.target.port });
    s.setNoDelay(true);
    this.sock = s;
    s.on('connect', () => {
      this.connected = true;
      this.blocked = false;
      this.backoff = 100;
      this.on.connect();
    });
    s.on('drain', () => {
      this.blocked = false;
      this.on.drain();
      this.wakeDrain();
    });
    s.on('error', (err) => {
      this.st.errors++;
      this.st.lastError = `tcp ${this.target.host}:${this.target.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
    });
    s.on('close', () => {
      this.connected = false;
      this.sock = undefined;
      this.wakeDrain();
      if (this.closing) return;
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.timer.unref();
      this.backoff = Math.min(this.backoff * 2, this.maxBackoff);
    });
  }

  ready(): boolean {
    return this.connected && !this.blocked;
  }

  send(msg: Buffer, records: number): void {
    const s = this.sock;
    if (!s || !this.connected) {
      this.st.dropped += records;
      this.st.lastError = 'collector connection lost';
      return;
    }
    this.st.sent += records;
    this.st.messages++;
    if (!s.write(msg)) this.blocked = true;
  }

  private wakeDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  idle(): Promise<void> {
    if (!this.sock || !this.connected || this.sock.writableLength === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    const s = this.sock;
    if (!s) return;
    await new Promise<void>((r) => {
      const t = setTimeout(() => {
        s.destroy();
        r();
      }, 2000);
      t.unref();
      s.once('close', () => {
        clearTimeout(t);
        r();
      });
      if (this.connected) s.end();
      else s.destroy();
    });
  }
}

class IpfixSink extends CollectorSink {
  readonly kind = 'ipfix';
  private readonly queue: ExportFlow[] = [];
  private readonly queueMax: number;
  private readonly tcp: boolean;

  constructor(o: IpfixSinkOptions) {
    super();
    const target = parseHostPort(o.collector);
    this.setMaxDelay(o.maxDelayMs);
    this.tcp = (o.transport ?? 'udp') === 'tcp';
    this.queueMax = o.queueRecords ?? 10_000;
    const enc = new IpfixEncoder({ ...o, systemInitMs: systemBootMs() }, (msg, records) =>
      this.transport.send(msg, records),
    );
    this.encoder = enc;
    if (this.tcp) {
      enc.periodicTemplates = false;
      this.transport = new TcpTransport(target, this.st, o.maxReconnectMs ?? 5000, {
        // A new connection is a new transport session: sequence from 0, templates first, then what waited.
        connect: () => {
          enc.newSession();
          enc.sendTemplates();
          this.drainQueue();
        },
        drain: () => this.drainQueue(),
      });
    } else {
      this.transport = new UdpTransport(target, this.st, () => enc.requestTemplates(), o.unreachableHoldMs);
    }
  }

  private drainQueue(): void {
    let n = 0;
    while (n < this.queue.length && this.transport.ready()) this.encode(this.queue[n++]);
    this.queue.splice(0, n);
    this.st.queued = this.queue.length;
    this.encoder.flush();
  }

  protected override enqueue(f: ExportFlow): void {
    if (!this.tcp || this.queue.length >= this.queueMax) {
      this.drop(1, this.tcp ? 'reconnect queue full' : 'collector not reachable');
      return;
    }
    this.queue.push(f);
    this.st.queued = this.queue.length;
  }

  override async close(): Promise<void> {
    if (this.queue.length > 0) {
      this.drop(this.queue.length, 'closed with records queued (collector not reachable)');
      this.queue.length = 0;
      this.st.queued = 0;
    }
    await super.close();
  }
}

class Netflow9Sink extends CollectorSink {
  readonly kind = 'netflow9';
  constructor(o: Netflow9SinkOptions) {
    super();
    const target = parseHostPort(o.collector);
    this.setMaxDelay(o.maxDelayMs);
    const enc = new Netflow9Encoder({ ...o, bootMs: systemBootMs() }, (msg, records) =>
      this.transport.send(msg, records),
    );
    this.encoder = enc;
    this.transport = new UdpTransport(target, this.st, () => enc.requestTemplates(), o.unreachableHoldMs);
  }
}

/** An IPFIX exporter to `collector` (UDP by default, or TCP). Bad options throw here. */
export function ipfixSink(o: IpfixSinkOptions): FlowSink {
  if (o.transport !== undefined && o.transport !== 'udp' && o.transport !== 'tcp')
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `transport must be udp or tcp, got ${String(o.transport)}`);
  return new IpfixSink(o);
}

/** A NetFlow v9 exporter to `collector` over UDP. Bad options throw here. */
export function netflow9Sink(o: Netflow9SinkOptions): FlowSink {
  return new Netflow9Sink(o);
}
