/**
 * IPFIX and NetFlow v9 sinks: flows are encoded as they arrive and the
 * messages go to a collector over UDP (connected, so an ICMP port
 * unreachable shows up as ECONNREFUSED on a later send) or TCP (IPFIX only;
 * templates once per connection, reconnect with backoff, a bounded queue of
 * records meanwhile). A collector that is down costs records, which are
 * counted; the sink keeps going and recovers when the collector returns.
 */

import { uptime } from 'node:os';
import { FlowgrabError } from '../errors.js';
import { parseHostPort } from './address.js';
import type { EncoderOptions, MessageEncoder } from './encoder.js';
import { asExportFlow, type ExportFlow } from './flow.js';
import { IpfixEncoder } from './ipfix.js';
import { Netflow9Encoder } from './netflow9.js';
import { emptyStats, type FlowSink, type SinkStats } from './sink.js';
import type { SpoolOptions } from './spool/index.js';
import { TcpTransport } from './tcp-transport.js';
import { type Transport, UdpTransport } from './transport.js';

/** Options of the IPFIX and NetFlow v9 sinks: where to send, queueing, batching. */
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
  /**
   * UDP without `maxMessageBytes`: how often the path MTU to the collector is read again, so that messages
   * follow a route or PMTU change (default 30 000 ms; 0: only when the socket connects).
   */
  pathMtuRecheckMs?: number;
}

/**
 * Without `maxMessageBytes`, a UDP sink fills the path MTU to the collector (less the IP and UDP headers:
 * no fragments, as RFC 7011 §10.3.3 asks), up to this: a 9000-byte jumbo frame's payload. Each datagram
 * costs a send and a wake-up of the collector; on loopback, 1400-byte messages cost the exporter 12% more
 * CPU per flow (bench/export.ts). 1400 where the path MTU is unknown.
 */
export const PATH_MESSAGE_MAX = 8972;

/** The message size for a path MTU (IPv4 or IPv6 headers and UDP's off it), within [min, PATH_MESSAGE_MAX]. */
export function messageBytesForMtu(mtu: number, ipv6: boolean, min: number): number {
  return Math.max(min, Math.min(PATH_MESSAGE_MAX, mtu - (ipv6 ? 40 : 20) - 8));
}

/** Options of ipfixSink(): transport, observation domain, biflow records, spool. */
export interface IpfixSinkOptions extends CollectorOptions {
  /** UDP (default) or TCP (templates once per connection, reconnects; messages up to PATH_MESSAGE_MAX bytes). */
  transport?: 'udp' | 'tcp';
  /** IPFIX observation domain id (default 0). */
  observationDomainId?: number;
  /** One RFC 5103 biflow record per connection (default true); false: two unidirectional records. */
  biflow?: boolean;
  /** The exporter options record (systemInitTimeMilliseconds, totals) with the templates; default off. */
  exporterInfo?: boolean;
  /** TCP: a durable on-disk spool (src/export/spool: dir, maxBytes) instead of the in-memory queue. */
  spool?: Omit<SpoolOptions, 'onDrop'>;
}

/** Options of netflow9Sink(). */
export interface Netflow9SinkOptions extends CollectorOptions {
  /** NetFlow v9 source id (default 0). */
  sourceId?: number;
}

/** When the OS booted (ms since the epoch): exporter uptime counts from it, so no flow predates it. */
export function systemBootMs(): number {
  return Date.now() - uptime() * 1000;
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
    return { ...this.st, templates: this.encoder.counts.templates, messageBytes: this.encoder.maxMessageBytes };
  }

  /**
   * The UDP transport to `target`, for the encoder made already: templates again after a send error, and
   * messages sized by the path MTU unless the options size them.
   */
  protected udp(target: { host: string; port: number }, o: CollectorOptions): UdpTransport {
    const recheckMs = o.pathMtuRecheckMs ?? 30_000;
    if (!Number.isFinite(recheckMs) || recheckMs < 0)
      throw new FlowgrabError(
        'FG_ERR_INVALID_ARGUMENT',
        `pathMtuRecheckMs must be a number of ms ≥ 0, got ${recheckMs}`,
      );
    const sizeByPath =
      o.maxMessageBytes === undefined
        ? {
            onChange: (mtu: number | undefined, v6: boolean) => {
              if (mtu !== undefined)
                this.encoder.setMaxMessageBytes(messageBytesForMtu(mtu, v6, this.encoder.minMessageBytes));
            },
            recheckMs,
          }
        : undefined;
    return new UdpTransport(target, this.st, () => this.encoder.requestTemplates(), o.unreachableHoldMs, sizeByPath);
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
    // Over TCP a message is not a datagram (no MTU to fit): as large as the largest UDP one, a send per 100 flows.
    const maxMessageBytes = o.maxMessageBytes ?? (this.tcp ? PATH_MESSAGE_MAX : undefined);
    const enc = new IpfixEncoder({ ...o, maxMessageBytes, systemInitMs: systemBootMs() }, (msg, records) =>
      this.transport.send(msg, records),
    );
    this.encoder = enc;
    if (this.tcp) {
      enc.periodicTemplates = false;
      this.transport = new TcpTransport(
        target,
        this.st,
        o.maxReconnectMs ?? 5000,
        {
          // A new connection is a new transport session: sequence from 0, templates first, then what waited.
          connect: () => {
            enc.newSession();
            enc.sendTemplates();
            this.drainQueue();
          },
          drain: () => this.drainQueue(),
        },
        o.spool,
      );
    } else {
      this.transport = this.udp(target, o);
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
    this.transport = this.udp(target, o);
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
