/**
 * NATS JetStream sink. Every record goes through the durable spool first
 * (write-ahead) and a pump publishes from it with JetStream acknowledgements,
 * a window of publishes in flight, moving the spool's delivered position as
 * acks come back. So the exporter follows the kernel from its first record
 * even with no server reachable, keeps order across outages, and a restart
 * after `kill -9` delivers what was spooled; a record published twice (retry,
 * replay after a crash) carries the same Nats-Msg-Id and is stored once
 * within the stream's duplicate window.
 *
 * A stream that refuses records (limits with discard=new, no quorum) is
 * backpressure: nothing is dropped, the records wait in the spool, the
 * refusals are counted (`backpressure`) and reported; only the spool's
 * size limit ever drops records, and those are counted (`dropped`).
 */
import { hostname } from 'node:os';
import { FlowgrabError } from '../../errors.js';
import { type NoticeObserver, publishNotice } from '../../sources/notice.js';
import { admitRecord, countError, emptyStats, type FlowSink, type SinkStats } from '../sink.js';
import { Spool, type SpoolEntry } from '../spool/index.js';
import { defaultSpoolDir } from '../spool/paths.js';
import { loadNats, type NatsJetStream, parseServers } from './load.js';
import { checkStreamOptions, ensureStream } from './stream.js';
import type { StreamOptions } from './stream-options.js';
import { compileSubject, decodeEntry, encodeEntry, msgId } from './subject.js';

/** Options of natsSink(): servers, subject template, stream, spool. */
export interface NatsSinkOptions extends Partial<StreamOptions> {
  /** Server URLs (`nats://host:4222`), a list or comma-separated. */
  servers: string | string[];
  /** Subject template with `{host}`, `{source}`, `{netns}` (default `flowgrab.{host}.{source}`). */
  subject?: string;
  /** This exporter's name in subjects and message ids (default the host name). */
  host?: string;
  /** Spool directory (default under the state directory, per stream). */
  spoolDir?: string;
  /** Spool size limit in bytes (default 256 MiB). */
  spoolBytes?: number;
  /** Publishes awaiting their ack at once (default 256). */
  window?: number;
  /** How long a publish waits for its ack (default 5000 ms). */
  ackTimeoutMs?: number;
  /** At close: how long to keep delivering what the spool holds while the cluster answers (default 10 s). */
  drainTimeoutMs?: number;
  /** Loss (spool limit) and backpressure notices; they also go to the `flowgrab:notice` channel. */
  notices?: NoticeObserver;
}

export interface NatsSinkStats extends SinkStats {
  /** Publishes the stream acknowledged as already stored (a retry or a replay, deduplicated). */
  duplicates: number;
  /** Publishes the stream refused for its limits (records kept in the spool). */
  backpressure: number;
  /** Records in the spool not yet acknowledged. */
  spooled: number;
  /** Records found in the spool at start (from an earlier run). */
  recovered: number;
  connected: boolean;
}

/** The NATS JetStream sink: a FlowSink with NATS counters. */
export interface NatsFlowSink extends FlowSink {
  /** Counters, with the spool's and the connection's state. */
  stats(): NatsSinkStats;
}

const BACKPRESSURE =
  /maximum (messages|bytes|messages per subject) exceeded|insufficient resources|resource limits exceeded/i;
const PERMANENT = /message size exceeds maximum|maximum payload exceeded|invalid subject/i;

type Conn = Awaited<ReturnType<Awaited<ReturnType<typeof loadNats>>['transport']['connect']>>;

class NatsSink implements FlowSink {
  readonly kind = 'nats';
  private readonly st = emptyStats();
  private readonly extra = { duplicates: 0, backpressure: 0 };
  private nc?: Conn;
  private js?: ReturnType<NatsJetStream['jetstream']>;
  private ready = false;
  private closed = false;
  private gen = 0;
  private inflight = 0;
  private retry?: NodeJS.Timeout;
  private backoff = 250;
  private readonly subject: (r: unknown) => string;
  private readonly host: string;

  constructor(
    private readonly o: NatsSinkOptions & { servers: string[]; stream: StreamOptions },
    private readonly spool: Spool,
    private readonly lib: Awaited<ReturnType<typeof loadNats>>,
  ) {
    this.host = o.host ?? hostname();
    this.subject = compileSubject(o.subject ?? 'flowgrab.{host}.{source}', this.host);
    spool.onData = () => this.pump();
    void this.run();
  }

  notice(kind: 'loss' | 'warning', message: string, count?: number): void {
    publishNotice({ kind, source: 'nats', where: 'reader', count, message, ts: Date.now() }, this.o.notices);
  }

  /**
   * Connects, trying again (back-off, unref'd timers) until a first server answers or the sink closes: the
   * client's own waitOnFirstConnect cannot be cancelled and would keep the process alive after close().
   * Once connected, the client reconnects by itself.
   */
  private async run(): Promise<void> {
    let wait = 250;
    while (!this.closed && !this.nc) {
      try {
        this.nc = await this.lib.transport.connect({
          servers: this.o.servers,
          name: `flowgrab-export-${this.host}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          timeout: 2000,
        });
      } catch (err) {
        this.failed(err);
        await new Promise((r) => setTimeout(r, wait).unref());
        wait = Math.min(wait * 2, 5000);
      }
    }
    if (!this.nc) return;
    if (this.closed) {
      await this.nc.close();
      return;
    }
    this.js = this.lib.js.jetstream(this.nc, { timeout: this.o.ackTimeoutMs ?? 5000 });
    void this.watch(this.nc);
    await this.prepare();
  }

  private async watch(nc: Conn): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.ready = false;
        this.restart();
      } else if (s.type === 'reconnect') void this.prepare();
    }
  }

  /** The stream exists (created when missing): then publishing starts (again). */
  private async prepare(): Promise<void> {
    if (!this.nc || this.closed) return;
    try {
      await ensureStream(this.lib.js, this.nc, this.o.stream);
      this.ready = true;
      this.backoff = 250;
      this.restart();
      this.pump();
    } catch (err) {
      this.failed(err);
      this.later(() => void this.prepare());
    }
  }

  private later(f: () => void): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      f();
    }, this.backoff);
    this.retry.unref();
    this.backoff = Math.min(this.backoff * 2, 5000);
  }

  private failed(err: unknown): void {
    countError(this.st, 'nats', err);
  }

  /** Forget what is in flight (its acks no longer count) and publish again from the delivered position. */
  private restart(): void {
    this.gen++;
    this.inflight = 0;
    this.spool.rewind();
  }

  write(record: unknown): void {
    const json = admitRecord(this.st, this.closed, record);
    if (
      json !== undefined &&
      !this.spool.append(encodeEntry(this.subject(record), msgId(this.host, record, json), json))
    ) {
      this.st.rejected++;
      this.st.lastError = 'record larger than the spool entry limit';
    }
  }

  private pumpScheduled = false;

  /** Acks arrive one by one: refill the window once per event loop turn, in one read of the spool. */
  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const js = this.js;
    if (!this.ready || !js || this.closed) return;
    const window = this.o.window ?? 256;
    while (this.inflight < window) {
      const batch = this.spool.next(window - this.inflight);
      if (batch.length === 0) return;
      for (const e of batch) this.publish(js, e);
    }
  }

  private publish(js: NonNullable<NatsSink['js']>, e: SpoolEntry): void {
    const m = decodeEntry(e.payload);
    const gen = this.gen;
    if (!m) {
      this.spool.ack(e.seq);
      this.st.rejected++;
      return;
    }
    this.inflight++;
    js.publish(m.subject, m.data, { msgID: m.id, timeout: this.o.ackTimeoutMs ?? 5000 }).then(
      (pa) => {
        if (gen !== this.gen) return;
        this.inflight--;
        this.spool.ack(e.seq);
        if (pa.duplicate) this.extra.duplicates++;
        else {
          this.st.sent++;
          this.st.messages++;
        }
        this.pumpSoon();
      },
      (err: Error) => {
        if (gen !== this.gen) return;
        const msg = err.message ?? String(err);
        if (PERMANENT.test(msg)) {
          // This record can never be stored: count it and go on with the next ones.
          this.inflight--;
          this.spool.ack(e.seq);
          this.st.rejected++;
          this.st.lastError = `nats: ${msg}`;
          this.pump();
          return;
        }
        if (BACKPRESSURE.test(msg)) {
          if (this.extra.backpressure++ === 0 || this.extra.backpressure % 1000 === 0)
            this.notice(
              'warning',
              `stream ${this.o.stream.name} refuses records (${msg}): backpressure, records kept in the spool`,
            );
        }
        this.failed(err);
        this.restart();
        this.later(() => this.pump());
      },
    );
  }

  flush(): Promise<void> {
    this.spool.flush();
    return Promise.resolve();
  }

  /** Delivers what the spool holds while the cluster answers (bounded), then keeps the rest for the next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.spool.flush();
    const deadline = Date.now() + (this.o.drainTimeoutMs ?? 10_000);
    let downSince = this.ready ? 0 : Date.now();
    while (this.spool.stats().pending > 0 && Date.now() < deadline) {
      if (!this.ready) {
        downSince ||= Date.now();
        if (Date.now() - downSince > 1000) break;
      } else downSince = 0;
      this.pump();
      await new Promise((r) => setTimeout(r, 20));
    }
    this.closed = true;
    this.gen++;
    if (this.retry) clearTimeout(this.retry);
    this.spool.close();
    await this.nc?.close().catch(() => undefined);
    const left = this.spool.stats().pending;
    if (left > 0) this.notice('warning', `${left} records stay in the spool ${this.spool.dir} for the next run`);
  }

  stats(): NatsSinkStats {
    const sp = this.spool.stats();
    return {
      ...this.st,
      ...this.extra,
      dropped: this.st.dropped + sp.dropped,
      queued: sp.pending,
      spooled: sp.pending,
      recovered: sp.recovered,
      connected: this.ready,
    };
  }
}

/** Opens the spool and starts connecting in the background (records spool until a server answers). */
export async function natsSink(o: NatsSinkOptions): Promise<NatsFlowSink> {
  const servers = parseServers(o.servers);
  const stream = {
    name: o.name ?? 'flowgrab',
    replicas: o.replicas ?? 1,
    duplicateWindowMs: o.duplicateWindowMs ?? 120_000,
    subjects: o.subjects,
  };
  checkStreamOptions(stream);
  const template = o.subject ?? 'flowgrab.{host}.{source}';
  compileSubject(template, 'x'); // refuse a bad template before anything opens
  const window = o.window ?? 256;
  if (!Number.isInteger(window) || window < 1 || window > 65536)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `window must be an integer in [1, 65536], got ${window}`);
  const lib = await loadNats();
  let sink: NatsSink | undefined;
  const spool = new Spool({
    dir: o.spoolDir ?? defaultSpoolDir(`nats-${stream.name}`),
    maxBytes: o.spoolBytes,
    onDrop: (n, why) => sink?.notice('loss', why, n),
  });
  sink = new NatsSink({ ...o, servers, subject: template, stream: { ...stream, template } }, spool, lib);
  return sink;
}
