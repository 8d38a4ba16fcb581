/**
 * IPFIX over TCP (see TcpTransport): reconnects with backoff, an optional
 * durable spool, and delivery counted when the collector acknowledged it.
 */
import { type Socket as TcpSocket, connect as tcpConnect } from 'node:net';
import { socketFd } from '../util/socket-fd.js';
import { IPFIX_HEADER_LEN } from './ipfix.js';
import type { SinkStats } from './sink.js';
import { Spool, type SpoolOptions, SpoolPump } from './spool/index.js';
import type { Transport } from './transport.js';

/**
 * How long flush() and close() wait for a TCP collector to take what was written. One that accepted the
 * connection and stopped reading held `flowgrab export --tcp` past SIGTERM for good; past this the socket is
 * destroyed and what it still held is counted as dropped.
 */
export const IDLE_WAIT_MS = 10_000;

/** How often a TCP sink looks whether the collector has acknowledged what it wrote, while something waits for it. */
const ACK_POLL_MS = 20;

/** A message handed to the kernel, waiting for the collector's TCP acknowledgement. */
interface Unacked {
  /** Bytes handed to the kernel in this session up to this message's last. */
  end: number;
  records: number;
  /** A spooled message's confirmation: the spool keeps it until then. */
  done?: (err?: Error) => void;
}

/**
 * IPFIX over TCP: one transport session per connection; records wait in a
 * bounded queue while it is down. With a spool, every data message goes
 * to the spool first and is written from it while connected, so an outage
 * or a `kill -9` of the exporter costs nothing the spool limit did not
 * force. Messages of an earlier session get this session's sequence numbers
 * as they are written; the templates of a session go straight out at its
 * start, never spooled. A message counts as delivered once the collector's
 * TCP stack acknowledged its last byte (the socket's unacknowledged bytes,
 * SIOCOUTQ, fell below it), not when our kernel took it: a connection reset
 * with messages unacknowledged lost them while they counted as sent, and a
 * spooled one had already left the spool. Now those move to dropped
 * (in-memory queue) or go again on the next connection (spool: at least
 * once).
 */
export class TcpTransport implements Transport {
  private sock?: TcpSocket;
  /** Bytes whose write completed (handed to the kernel) in this session. */
  private kernelBytes = 0;
  /** The connected socket's descriptor, for its unacknowledged bytes (undefined between connections). */
  private fd?: number;
  private unacked: Unacked[] = [];
  /** close() had to destroy the socket (the close did not finish within 2 s): what it held is lost. */
  private forced = false;
  private ackTimer?: NodeJS.Timeout;
  /** Reads the socket's unacknowledged bytes (undefined: it cannot; then the kernel taking a message is enough). */
  private outq?: (fd: number) => number;
  /** Set with a spool: resets, rather than sends on, what the collector has not acknowledged at close. */
  private abortOnClose?: (fd: number) => void;
  private pump?: SpoolPump;
  /** Data records written in this session: the IPFIX sequence number of the next message. */
  private sessionSeq = 0;
  private readonly spool?: Spool;
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
    spoolOptions?: Omit<SpoolOptions, 'onDrop'>,
  ) {
    const spool = spoolOptions
      ? new Spool({
          ...spoolOptions,
          // An entry is one IPFIX message: its first 4 bytes say how many records it holds.
          weigh: (b) => (b.length >= 4 ? b.readUInt32BE(0) : 0),
          onDrop: (n, why) => {
            this.st.dropped += n;
            this.st.lastError = why;
          },
        })
      : undefined;
    this.spool = spool;
    // Connects once it knows how to read acknowledgements (or that it cannot: then what the kernel took counts).
    void import('../netlink/inet.js').then(
      (m) => {
        this.outq = m.tcpUnacked;
        // With a spool, what the collector has not acknowledged is sent again on the next connection: on close
        // (a kill too) it is reset, not delivered after us as well.
        if (this.spool) this.abortOnClose = m.abortOnClose;
        this.connect();
      },
      (err: Error) => {
        this.st.lastError = `tcp: cannot read acknowledgements (${err.message}): a message counts as sent when written`;
        this.connect();
      },
    );
    if (spool)
      this.pump = new SpoolPump(spool, {
        window: 64,
        ready: () => this.connected,
        send: (b, done) => this.writeSpooled(b, done),
        // A record count and a message header at least: what writeSpooled reads and rewrites.
        valid: (b) => b.length >= 4 + IPFIX_HEADER_LEN,
        onRejected: () => {
          this.st.errors++;
          this.st.lastError = 'spool: an entry too short to be a message (a damaged spool), skipped';
        },
        onError: (err) => {
          this.st.errors++;
          this.st.lastError = `tcp ${this.target.host}:${this.target.port}: ${err.message}`;
        },
      });
  }

  private writeSpooled(b: Buffer, done: (err?: Error) => void): void {
    const s = this.sock;
    if (!s || !this.connected) {
      done(new Error('collector connection lost'));
      return;
    }
    const records = b.readUInt32BE(0);
    const msg = b.subarray(4);
    msg.writeUInt32BE(this.sessionSeq >>> 0, 8);
    this.sessionSeq = (this.sessionSeq + records) >>> 0;
    s.write(msg, (err) => {
      if (err) {
        done(err);
        return;
      }
      // Confirmed to the spool (and counted as sent) once the collector acknowledged it.
      this.written(s, msg.length, records, (e) => {
        if (!e) {
          this.st.sent += records;
          this.st.messages++;
        }
        done(e);
        this.st.queued = this.spool?.stats().pending ?? 0;
      });
    });
  }

  /** A write of `bytes` completed on `s`: it waits for the collector's acknowledgement. */
  private written(s: TcpSocket, bytes: number, records: number, done?: (err?: Error) => void): void {
    if (s !== this.sock) {
      done?.(new Error('collector connection lost before it acknowledged'));
      return;
    }
    this.kernelBytes += bytes;
    this.unacked.push({ end: this.kernelBytes, records, done });
    // A look per completed write (an ioctl: a microsecond a message), so confirmations keep pace with the window.
    this.checkAcks();
    if (s.writableLength === 0) this.wakeDrain();
  }

  /** Settles what the collector has acknowledged; looks again soon while something waits. */
  private checkAcks(): void {
    const fd = this.fd;
    let acked = this.kernelBytes;
    if (this.outq && fd !== undefined && fd >= 0) {
      try {
        acked -= this.outq(fd);
      } catch {
        // cannot tell: what the kernel took counts
      }
    }
    let i = 0;
    while (i < this.unacked.length && this.unacked[i].end <= acked) i++;
    const settled = this.unacked.splice(0, i);
    for (const u of settled) u.done?.();
    if (this.unacked.length === 0) {
      if (settled.length) this.wakeDrain();
      return;
    }
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      this.checkAcks();
    }, ACK_POLL_MS);
    this.ackTimer.unref();
  }

  /**
   * The connection is gone: what the collector never acknowledged is lost from this session. Spooled messages
   * stay in the spool, to go again on the next connection (or run: never counted sent unless acknowledged);
   * others move from sent to dropped, except on our own close (end(): the kernel delivers what it holds before
   * the FIN) unless close() had to destroy the socket.
   */
  private connectionLost(): void {
    const lostToo = !this.closing || this.forced;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const left = this.unacked;
    this.unacked = [];
    this.kernelBytes = 0;
    let lost = 0;
    for (const u of left) {
      if (u.done) u.done(new Error('collector connection lost before it acknowledged'));
      else if (lostToo) {
        this.unsend(u.records);
        lost += u.records;
      }
    }
    if (lost) this.st.lastError = `collector connection lost: ${lost} records it had not acknowledged`;
  }

  private connect(): void {
    this.timer = undefined;
    if (this.closing) return;
    const s = tcpConnect({ host: this.target.host, port: this.target.port });
    s.setNoDelay(true);
    this.sock = s;
    s.on('connect', () => {
      this.connected = true;
      this.fd = socketFd(s);
      if (this.fd !== undefined && this.abortOnClose) {
        try {
          this.abortOnClose(this.fd);
        } catch (err) {
          this.st.lastError = `tcp: SO_LINGER: ${(err as Error).message}`;
        }
      }
      this.blocked = false;
      this.backoff = 100;
      this.sessionSeq = 0;
      // Templates first (written directly), then the spool from its delivered position.
      this.on.connect();
      this.pump?.restart();
      this.pump?.kick();
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
      this.connectionLost();
      this.sock = undefined;
      this.fd = undefined;
      this.wakeDrain();
      if (this.closing) return;
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.timer.unref();
      this.backoff = Math.min(this.backoff * 2, this.maxBackoff);
    });
  }

  ready(): boolean {
    // With a spool everything is accepted: it waits there.
    return this.spool !== undefined || (this.connected && !this.blocked);
  }

  send(msg: Buffer, records: number): void {
    if (this.spool && records > 0) {
      const b = Buffer.allocUnsafe(4 + msg.length);
      b.writeUInt32BE(records, 0);
      msg.copy(b, 4);
      if (!this.spool.append(b)) {
        this.st.dropped += records;
        this.st.lastError = 'message larger than the spool entry limit';
      }
      this.st.queued = this.spool.stats().pending;
      return;
    }
    // With a spool, a templates-only message goes out now or not at all (each session starts with them).
    if (this.spool && !this.connected) return;
    const s = this.sock;
    if (!s || !this.connected) {
      this.st.dropped += records;
      this.st.lastError = 'collector connection lost';
      return;
    }
    this.st.sent += records;
    this.st.messages++;
    // Counted as sent when written; a message the socket never got out (destroyed: the collector hung or
    // went away) moves to dropped.
    const written = s.write(msg, (err) => {
      if (!err) {
        this.written(s, msg.length, records);
        return;
      }
      this.unsend(records);
    });
    if (!written) this.blocked = true;
  }

  /** A message counted as sent that did not arrive: its records move to dropped. */
  private unsend(records: number): void {
    this.st.sent -= records;
    this.st.messages--;
    this.st.dropped += records;
  }

  private wakeDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once what was written went out, or after IDLE_WAIT_MS (a collector that stopped reading). */
  async idle(): Promise<void> {
    if (this.pump) return this.pump.drain(IDLE_WAIT_MS);
    const deadline = Date.now() + IDLE_WAIT_MS;
    // Until the collector acknowledged everything written (a write completing, the socket draining, an
    // acknowledgement or the connection's end wakes this to look again).
    while (this.sock && this.connected && (this.sock.writableLength > 0 || this.unacked.length > 0)) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        t.unref();
        this.drainWaiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Records waiting in the spool (0 without one). */
  spooled(): number {
    return this.spool?.stats().pending ?? 0;
  }

  async close(): Promise<void> {
    if (this.pump) {
      await this.pump.drain(IDLE_WAIT_MS);
      this.pump.stop();
      this.spool?.close();
    }
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    const s = this.sock;
    if (!s) return;
    await new Promise<void>((r) => {
      const t = setTimeout(() => {
        this.forced = true;
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
