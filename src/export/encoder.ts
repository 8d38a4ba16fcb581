/**
 * The message loop shared by the IPFIX and NetFlow v9 encoders: records are
 * written straight into one preallocated buffer of the maximum message size;
 * a message is finished when the next record would not fit (or on flush),
 * and handed out as a copy. Templates open a message when they are due:
 * every N messages and every T seconds (UDP), or once per session (TCP).
 */
import { FlowgrabError } from '../errors.js';
import type { ExportFlow } from './flow.js';
import { type RecordWriter, recordWriter } from './record-writer.js';
import { FlowAddresses, type Template, writeTemplateRecord } from './template.js';

export interface EncoderOptions {
  /**
   * Largest message in bytes (the UDP payload); default 1400, to stay under a 1500-byte MTU. The
   * collector sinks size it to the path MTU instead when it is not given (collector.ts).
   */
  maxMessageBytes?: number;
  /** Resend templates every this many messages (0: not by count); default 20. */
  templateRefreshPackets?: number;
  /** … and every this many seconds (0: not by time); default 30. */
  templateRefreshSeconds?: number;
  /** Clock in ms since the epoch (tests pass a fixed one). */
  now?: () => number;
}

export interface EncoderStats {
  messages: number;
  /** Data records written (a uniflow export writes up to two per flow). */
  records: number;
  flows: number;
  /** Messages that carried templates. */
  templates: number;
}

/** One finished message; `records` data records, `templates` true when it opens with templates. */
export type MessageHandler = (msg: Buffer, records: number, templates: boolean) => void;

/** What a wire format tells the shared loop. */
export interface Layout {
  headerLen: number;
  /** Every template data records use. */
  templates: readonly Template[];
  /** Bytes of everything `writeTemplates` writes. */
  templateBytes: number;
  /** Both directions as separate records (true), or one biflow record. */
  uniflow: boolean;
  /** NetFlow v9 pads each FlowSet to 4 bytes. */
  padSets: boolean;
  /** Anchor of NetFlow v9's relative times (ms since the epoch); unused by IPFIX. */
  bootMs: number;
}

export abstract class MessageEncoder {
  protected buf: Buffer;
  protected max: number;
  protected readonly now: () => number;
  private readonly refreshPackets: number;
  private readonly refreshMs: number;
  /** 0: no message open. */
  protected off = 0;
  private setStart = 0;
  private setTemplate: Template | undefined;
  protected msgRecords = 0;
  protected msgTemplateRecords = 0;
  private msgHasTemplates = false;
  private sinceTemplates = 0;
  private templatesAt = Number.NEGATIVE_INFINITY;
  private templatesDue = true;
  /** TCP: templates once per session, never on a timer. */
  periodicTemplates = true;
  readonly counts: EncoderStats = { messages: 0, records: 0, flows: 0, templates: 0 };
  private readonly addrs = new FlowAddresses();
  /** The last template written and its writers (forward, reverse): flows of one family come in runs. */
  private writerFor: Template | undefined;
  private writeFwd!: RecordWriter;
  private writeRev!: RecordWriter;

  constructor(
    opts: EncoderOptions,
    protected readonly onMessage: MessageHandler,
    protected readonly layout: Layout,
  ) {
    this.max = opts.maxMessageBytes ?? 1400;
    this.refreshPackets = opts.templateRefreshPackets ?? 20;
    this.refreshMs = (opts.templateRefreshSeconds ?? 30) * 1000;
    this.now = opts.now ?? Date.now;
    for (const [k, x] of Object.entries({
      templateRefreshPackets: this.refreshPackets,
      templateRefreshSeconds: this.refreshMs,
    }))
      if (!Number.isFinite(x) || x < 0)
        throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `${k} must be a number ≥ 0, got ${x}`);
    this.checkSize(this.max);
    this.buf = Buffer.alloc(this.max);
  }

  /** The smallest message size that holds the templates and one record of the largest template. */
  get minMessageBytes(): number {
    const l = this.layout;
    return l.headerLen + l.templateBytes + 4 + Math.max(...l.templates.map((t) => t.recordLen));
  }

  private checkSize(n: number): void {
    const need = this.minMessageBytes;
    if (!Number.isInteger(n) || n < need || n > 65535)
      throw new FlowgrabError(
        'FG_ERR_INVALID_ARGUMENT',
        `maxMessageBytes must be an integer from ${need} (templates and one record) to 65535, got ${n}`,
      );
  }

  /** Largest message in bytes now. */
  get maxMessageBytes(): number {
    return this.max;
  }

  /** A new largest message size (checked as the option is); the message being filled goes out first. */
  setMaxMessageBytes(n: number): void {
    this.checkSize(n);
    if (n === this.max) return;
    this.flush();
    this.max = n;
    this.buf = Buffer.alloc(n);
  }

  /** The template data records of this flow use (by family). */
  protected abstract template(f: ExportFlow): Template;
  /** Writes the template set(s) at `o`; returns the offset after them. */
  protected abstract writeTemplates(o: number): number;
  /** Writes the header of the finished message (length `len`) and advances the sequence. */
  protected abstract finishHeader(len: number): void;

  /** Templates go into the next message (after a send error, or a new session). */
  requestTemplates(): void {
    this.templatesDue = true;
  }

  /** Encodes one flow (one or two data records); finished messages go to the handler. */
  add(f: ExportFlow): void {
    const t = this.template(f);
    // A bad address or number throws before anything of this flow is written; the message stays valid.
    try {
      checkNumbers(f);
      this.addrs.prepare(f, t.family === 'ipv4');
    } catch (err) {
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `flow not exportable: ${(err as Error).message}`, {
        op: 'export.encode',
        cause: err,
      });
    }
    this.counts.flows++;
    this.put(t, f, false);
    if (this.layout.uniflow && f.rpackets > 0) this.put(t, f, true);
  }

  private put(t: Template, f: ExportFlow, reverse: boolean): void {
    if (this.off === 0) this.begin();
    if (this.setTemplate !== t) {
      this.closeSet();
      if (this.off + 4 + t.recordLen > this.max) {
        this.flush();
        this.begin();
      }
      this.openSet(t);
    } else if (this.off + t.recordLen > this.max) {
      this.flush();
      this.begin();
      this.openSet(t);
    }
    if (this.writerFor !== t) {
      this.writerFor = t;
      this.writeFwd = recordWriter(t, false);
      this.writeRev = recordWriter(t, true);
    }
    this.off = (reverse ? this.writeRev : this.writeFwd)(this.buf, this.off, f, this.addrs, this.layout.bootMs);
    this.msgRecords++;
    this.counts.records++;
  }

  private begin(): void {
    this.off = this.layout.headerLen;
    this.msgRecords = 0;
    this.msgTemplateRecords = 0;
    this.setTemplate = undefined;
    const now = this.now();
    const due =
      this.templatesDue ||
      (this.periodicTemplates &&
        ((this.refreshPackets > 0 && this.sinceTemplates >= this.refreshPackets) ||
          (this.refreshMs > 0 && now - this.templatesAt >= this.refreshMs)));
    this.msgHasTemplates = due;
    if (due) {
      this.off = this.writeTemplates(this.off);
      this.templatesDue = false;
      this.templatesAt = now;
      this.sinceTemplates = 0;
    }
  }

  private openSet(t: Template): void {
    this.setStart = this.off;
    this.buf.writeUInt16BE(t.id, this.off);
    this.off += 4;
    this.setTemplate = t;
  }

  private closeSet(): void {
    if (this.setTemplate === undefined) return;
    if (this.layout.padSets)
      while ((this.off - this.setStart) % 4 !== 0 && this.off < this.max) this.buf[this.off++] = 0;
    this.buf.writeUInt16BE(this.off - this.setStart, this.setStart + 2);
    this.setTemplate = undefined;
  }

  /** Finishes the open message, if it holds anything, and hands it out. */
  flush(): void {
    if (this.off === 0) return;
    if (this.msgRecords === 0 && !this.msgHasTemplates) {
      this.off = 0;
      return;
    }
    this.closeSet();
    const len = this.off;
    this.finishHeader(len);
    const msg = Buffer.allocUnsafe(len);
    this.buf.copy(msg, 0, 0, len);
    const records = this.msgRecords;
    const templates = this.msgHasTemplates;
    this.off = 0;
    this.counts.messages++;
    if (templates) this.counts.templates++;
    else this.sinceTemplates++;
    this.onMessage(msg, records, templates);
  }

  /** Forces templates into a message of their own now (e.g. at the start of a TCP session). */
  sendTemplates(): void {
    this.flush();
    this.templatesDue = true;
    this.begin();
    this.flush();
  }

  protected writeTemplateRecords(o: number, ts: readonly Template[]): number {
    for (const t of ts) {
      o = writeTemplateRecord(this.buf, o, t);
      this.msgTemplateRecords++;
    }
    return o;
  }
}

/** Exact in a u64 field: a whole number from 0 to 2^53 (a JS number is exact up to there). */
const u64 = (x: number) => Number.isSafeInteger(x) && x >= 0;
const within = (x: number | undefined, max: number) => x === undefined || (Number.isInteger(x) && x >= 0 && x <= max);

/**
 * The flow's numbers fit their fields, or a RangeError says which does not: written as they were, -5 bytes
 * went out as 4294967291, 2^64 as 0, protocol 300 as 44 and port 70000 as 4464.
 */
function checkNumbers(f: ExportFlow): void {
  const bad = (what: string, x: unknown) => {
    throw new RangeError(`${what} ${x} does not fit its field`);
  };
  if (!within(f.protonum, 255)) bad('protocol', f.protonum);
  for (const k of ['sport', 'dport', 'rsport', 'rdport'] as const) if (!within(f[k], 65535)) bad(k, f[k]);
  for (const k of ['packets', 'bytes', 'rpackets', 'rbytes'] as const) if (!u64(f[k])) bad(k, f[k]);
  if (!within(f.tcpFlags, 255)) bad('tcpFlags', f.tcpFlags);
  // ms since the epoch: finite, ≥ 0 and exact (above 2^53 they are not; above 2^64 they went out truncated).
  const time = (t: number) => Number.isFinite(t) && t >= 0 && t <= Number.MAX_SAFE_INTEGER;
  if (!time(f.start) || !time(f.end)) bad('time', `${f.start}-${f.end}`);
  for (const i of [f.icmp, f.ricmp])
    if (i && (!within(i.type, 255) || !within(i.code, 255))) bad('icmp', `${i.type}/${i.code}`);
}
