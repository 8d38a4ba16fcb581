/**
 * Delivery from a spool: hands records out in order to `send`, up to
 * `window` unconfirmed at once, confirms each in the spool when `send`
 * reports success, and on a failure forgets what is in flight and starts
 * again from the delivered position (at-least-once: the far side may see a
 * record twice, never miss one the spool kept).
 */
import type { Spool } from './spool.js';

export interface PumpOptions {
  window: number;
  /** Deliver one record; call `done()` once the far side has it, `done(err)` if it does not. */
  send(payload: Buffer, done: (err?: Error) => void): void;
  ready(): boolean;
  /** A failed delivery (after which everything in flight goes again). */
  onError?(err: Error): void;
  /** A confirmed delivery. */
  onSent?(): void;
  /**
   * Whether an entry is one `send` can deliver (its framing intact): one that is not is confirmed without being
   * sent and told to `onRejected`, never retried (a short entry made IPFIX over TCP throw on every start).
   */
  valid?(payload: Buffer): boolean;
  onRejected?(): void;
}

export class SpoolPump {
  private gen = 0;
  private inflight = 0;
  private retry?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly spool: Spool,
    private readonly o: PumpOptions,
  ) {
    spool.onData = () => this.kick();
  }

  /** Sends what the window allows, now. */
  kick(): void {
    if (this.stopped || !this.o.ready()) return;
    while (this.inflight < this.o.window) {
      const batch = this.spool.next(this.o.window - this.inflight);
      if (batch.length === 0) return;
      const gen = this.gen;
      for (const e of batch) {
        if (this.o.valid && !this.o.valid(e.payload)) {
          this.spool.reject(e.seq);
          this.o.onRejected?.();
          continue;
        }
        this.inflight++;
        this.o.send(e.payload, (err) => {
          if (gen !== this.gen) return;
          this.inflight--;
          if (err) {
            this.o.onError?.(err);
            this.restart();
            this.later();
            return;
          }
          this.spool.ack(e.seq);
          this.o.onSent?.();
          this.kickSoon();
        });
        if (gen !== this.gen) return; // send failed synchronously
      }
    }
  }

  private scheduled = false;

  /** Confirmations arrive one by one: refill the window once per event loop turn, in one read of the spool. */
  private kickSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.kick();
    });
  }

  private later(): void {
    if (this.retry || this.stopped) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.kick();
    }, 500);
    this.retry.unref();
  }

  /** Forget what is in flight: it goes again from the delivered position (a new connection). */
  restart(): void {
    this.gen++;
    this.inflight = 0;
    this.spool.rewind();
  }

  /** Waits (bounded) until everything spooled is confirmed, or the far side is away for more than a second. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let downSince = 0;
    while (this.spool.stats().pending > 0 && Date.now() < deadline) {
      if (!this.o.ready()) {
        downSince ||= Date.now();
        if (Date.now() - downSince > 1000) return;
      } else downSince = 0;
      this.kick();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.stopped = true;
    this.gen++;
    if (this.retry) clearTimeout(this.retry);
  }
}
