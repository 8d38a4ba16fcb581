/**
 * Verdicts leave in batches: each verdict is written into a shared buffer
 * and the buffer goes to the kernel as one datagram when it holds `max`
 * messages or at the end of the current turn of the event loop, whichever
 * comes first. One sendmsg per batch instead of per packet; the kernel
 * handles the messages of a datagram in order.
 */
import { type NfqVerdict, nfqVerdictMessageSize, writeNfqVerdictMessage } from '../../netlink/nfqueue/config.js';

const MAX_MESSAGE = 40;

export class VerdictOutbox {
  private buf: Buffer;
  private off = 0;
  private count = 0;
  private scheduled?: NodeJS.Immediate;

  constructor(
    private readonly send: (datagram: Buffer) => void,
    private readonly max = 64,
  ) {
    this.buf = Buffer.allocUnsafe(max * MAX_MESSAGE);
  }

  push(type: number, v: NfqVerdict): void {
    if (this.off + nfqVerdictMessageSize(v) > this.buf.length) this.flush();
    this.off = writeNfqVerdictMessage(this.buf, this.off, type, v);
    if (++this.count >= this.max) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
  }

  /** Sends what is waiting now (before an unbind, which must come after every verdict). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.off === 0) return;
    const datagram = this.buf.subarray(0, this.off);
    // The transport may still hold the bytes after send returns: the next batch gets a fresh buffer.
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.off = 0;
    this.count = 0;
    this.send(datagram);
  }
}
