/**
 * How IPFIX and NetFlow v9 messages reach a collector: the Transport they
 * share, and UDP (connected, so an ICMP port unreachable shows up as
 * ECONNREFUSED on a later send). TCP is in tcp-transport.ts. Loss is counted
 * in the sink's stats.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import type { SinkStats } from './sink.js';

/** Resolves a host name once; the socket family follows the address. */
async function resolve(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const r = await lookup(host); // an address literal comes back as it is, without a query
  return { address: r.address, family: r.family as 4 | 6 };
}

/**
 * The path MTU reader (netlink/syscall.ts, through koffi), loaded only by a sink that sizes its messages
 * by it; undefined where it cannot load.
 */
async function pathMtuReader(): Promise<((address: string, port: number) => number | undefined) | undefined> {
  try {
    const [{ pathMtu }, { parseIP }] = await Promise.all([import('../netlink/inet.js'), import('../netlink/ip.js')]);
    return (address, port) => {
      try {
        return pathMtu(parseIP(address), port);
      } catch {
        return undefined; // an address the parser does not take (a scoped fe80::1%eth0): the default size
      }
    };
  } catch {
    return undefined;
  }
}

export interface Transport {
  send(msg: Buffer, records: number): void;
  ready(): boolean;
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connected UDP. The kernel reports an ICMP port unreachable as ECONNREFUSED
 * on the socket, once, for some earlier datagram (and rate-limits the ICMP),
 * so loss cannot be known per datagram: a refusal moves the last datagram's
 * records from sent to dropped, and for `holdMs` records are counted as
 * dropped instead of being sent into the void; then sending resumes, with
 * templates first.
 */
export class UdpTransport implements Transport {
  private sock?: UdpSocket;
  private downUntil = 0;
  private lastRecords = 0;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private pending: { msg: Buffer; records: number }[] = [];
  private closing = false;
  private mtuTimer: NodeJS.Timeout | undefined;
  /** Reads the path MTU now (set once the socket is connected with a path MTU to follow). */
  private mtuNow?: () => void;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly st: SinkStats,
    private readonly onSendError: () => void,
    private readonly holdMs = 1000,
    /**
     * Told the path MTU to the collector when the socket connects (undefined when unknown), and again when a
     * reading every `recheckMs` (0: never) finds it changed: a route or the kernel's PMTU (ICMP) moved.
     */
    private readonly pathMtu?: { onChange: (mtu: number | undefined, ipv6: boolean) => void; recheckMs: number },
  ) {
    void this.open();
  }

  /** Reads the path MTU now, and every `recheckMs` while the socket is open, telling the sink of changes. */
  private followPathMtu(read: () => number | undefined, ipv6: boolean): void {
    const p = this.pathMtu;
    if (!p) return;
    let last = read();
    p.onChange(last, ipv6);
    clearInterval(this.mtuTimer);
    const recheck = () => {
      const mtu = read();
      if (mtu === undefined || mtu === last) return;
      last = mtu;
      p.onChange(mtu, ipv6);
    };
    // Read again at once when the kernel says a datagram was too big for the path (see refused()).
    this.mtuNow = recheck;
    if (p.recheckMs <= 0) return;
    this.mtuTimer = setInterval(recheck, p.recheckMs);
    this.mtuTimer.unref();
  }

  private async open(): Promise<void> {
    try {
      const { address, family } = await resolve(this.target.host);
      const mtuOf = this.pathMtu ? await pathMtuReader() : undefined;
      const s = createSocket(family === 6 ? 'udp6' : 'udp4');
      s.on('error', (err) => this.refused(err));
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.connect(this.target.port, address, () => {
          s.off('error', rej);
          res();
        });
      });
      // Before the socket is in use: what the sink flushes on a new size joins the pending messages, in order.
      this.followPathMtu(() => mtuOf?.(address, this.target.port), family === 6);
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

  /**
   * An error the kernel reports for an earlier datagram: the collector refused it (ECONNREFUSED), or a hop
   * could not forward it whole (EMSGSIZE: an ICMP "fragmentation needed" taught the kernel a smaller path
   * MTU). Either way the last datagram's records are lost, not sent; after EMSGSIZE the path MTU is read
   * again at once, not at the next recheck (until then every full datagram went out fragmented).
   */
  private refused(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'EMSGSIZE') {
      const n = Math.min(this.lastRecords, this.st.sent);
      this.st.sent -= n;
      this.lastRecords = 0;
      this.failed(err, n);
      if (code === 'EMSGSIZE') this.mtuNow?.();
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
    clearInterval(this.mtuTimer);
    await this.idle();
    const s = this.sock;
    this.sock = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
