/**
 * One mark registration on flowgrabd's shared NFQUEUE queue, client side:
 * its packets (payload as a Buffer again, each with its verdict()) and its
 * notices. It talks to the daemon through the connection's request(), and
 * knows nothing else of it.
 */
import { Subject } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import type { PacketRecord } from '../sources/nfqueue/record.js';
import type { Event } from './protocol.js';

/** What a registration needs of its connection. */
export interface Requester {
  request(body: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** A packet-queue registration granted by flowgrabd: the packets of the queue carrying `mark` come to this client. */
export interface QueueRegistration {
  /** Registration id on this connection. */
  reg: number;
  /** The NFQUEUE queue number the daemon owns. */
  queue: number;
  /** As the daemon normalised it, e.g. `0x10/0xf0`. */
  mark: string;
  /** A packet without a verdict after this long gets the daemon's default verdict. */
  timeoutMs: number;
}

/** A verdict for a packet from the daemon's queue. */
export type RemoteVerdict = 'accept' | 'drop' | 'repeat';

/** A packet from the daemon's queue: the record (payload as a Buffer again) and its verdict(). */
export type RemotePacket = PacketRecord & {
  /** Sends the packet's verdict to the daemon (optionally with a new mark); once per packet. */
  verdict(v: RemoteVerdict, opts?: { mark?: number }): Promise<void>;
};

/** A notice about a remote queue (loss, timeouts), as the daemon sent it. */
export interface QueueNotice {
  kind: string;
  message: string;
  count?: number;
  ts: number;
}

/** One mark registration on flowgrabd's shared NFQUEUE queue. */
export class RemoteQueue {
  private readonly out = new Subject<RemotePacket>();
  private readonly notes = new Subject<QueueNotice>();
  private closed = false;
  readonly packets$ = this.out.asObservable();
  /** Timeouts, packets decided because this client was not reading, a registration closed by a policy reload. */
  readonly notices$ = this.notes.asObservable();
  readonly reg: number;
  readonly queue: number;
  readonly mark: string;
  readonly timeoutMs: number;

  constructor(
    private readonly c: Requester,
    r: QueueRegistration,
    private readonly forget: () => void,
  ) {
    this.reg = r.reg;
    this.queue = r.queue;
    this.mark = r.mark;
    this.timeoutMs = r.timeoutMs;
  }

  /** Verdicts for several packets in one frame; resolves with what the daemon refused (not yours, too late). */
  async verdicts(
    list: { packetId: number; verdict: RemoteVerdict; mark?: number }[],
  ): Promise<{ accepted: number; refused: { packetId: number; reason: string }[] }> {
    const r = await this.c.request({ op: 'verdict', queue: this.reg, verdicts: list });
    return r as unknown as { accepted: number; refused: { packetId: number; reason: string }[] };
  }

  /** One verdict; rejects with the daemon's reason when refused. */
  async verdict(packetId: number, verdict: RemoteVerdict, opts?: { mark?: number }): Promise<void> {
    const r = await this.verdicts([{ packetId, verdict, ...opts }]);
    if (r.refused.length)
      throw new FlowgrabError('FG_ERR_DENIED', `verdict for packet ${packetId} refused: ${r.refused[0].reason}`, {
        op: 'verdict',
      });
  }

  /** Internal: called by the connection with this registration's events. */
  onEvent(e: Event): void {
    if (e.ev === 'packets')
      for (const raw of e.packets) {
        const p = { ...raw, payload: Buffer.from(String(raw.payload ?? ''), 'hex') } as PacketRecord;
        Object.defineProperty(p, 'verdict', {
          enumerable: false,
          value: (v: RemoteVerdict, opts?: { mark?: number }) => this.verdict(p.packetId, v, opts),
        });
        this.out.next(p as RemotePacket);
      }
    else if (e.ev === 'queue-notice') {
      const n = e.notice as unknown as QueueNotice;
      this.notes.next(n);
      if (n.kind === 'closed')
        this.finish(new FlowgrabError('FG_ERR_DENIED', `flowgrabd closed the queue: ${n.message}`));
    }
  }

  /** Gives the registration back; packets still waiting get the daemon's default verdict. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.c.request({ op: 'unqueue', queue: this.reg }).catch(() => {});
    this.finish();
  }

  /** Internal: called by the connection when it is lost; ends the streams with `err`. */
  onDisconnect(err: Error): void {
    this.finish(err);
  }

  private finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.forget();
    if (err) this.out.error(err);
    else this.out.complete();
    this.notes.complete();
  }
}
