/**
 * IPFIX (RFC 7011) messages: a 16-byte header (version 10, length, export
 * time, sequence number, observation domain), then sets: templates (set id
 * 2), optionally an options template (set id 3) with its one record
 * describing the exporter, and data sets (set id = template id).
 *
 * Biflow (the default) follows RFC 5103: one record per connection, the
 * originating direction in the usual elements and the reply direction's
 * counters as reverse elements (enterprise number 29305). nfdump 1.7 reads
 * them as out packets/bytes and tshark decodes them. `biflow: false` writes
 * two unidirectional records instead, like the NetFlow v9 encoder.
 */
import { type EncoderOptions, MessageEncoder, type MessageHandler } from './encoder.js';
import type { ExportFlow } from './flow.js';
import * as ie from './ie.js';
import { ipfixTemplate, makeTemplate, type Template } from './template.js';

export interface IpfixOptions extends EncoderOptions {
  observationDomainId?: number;
  /** One record per connection with RFC 5103 reverse counters (default), or one per direction. */
  biflow?: boolean;
  /** When the exporting system started (ms since the epoch), for systemInitTimeMilliseconds. */
  systemInitMs?: number;
  /**
   * Send the exporter options record (start time, totals) with the templates. Off by default:
   * nfdump 1.7 leaves options data records out of its sequence check and reports a sequence error.
   */
  exporterInfo?: boolean;
}

export const IPFIX_HEADER_LEN = 16;
export const IPFIX_TEMPLATE_V4 = 256;
export const IPFIX_TEMPLATE_V6 = 257;
export const IPFIX_OPTIONS_TEMPLATE = 258;

/** Scope: observationDomainId; then the exporter's start time and its running totals. */
const OPTIONS = makeTemplate(IPFIX_OPTIONS_TEMPLATE, 'ipv4', [
  { id: ie.observationDomainId, len: 4, kind: -1 },
  { id: ie.systemInitTimeMilliseconds, len: 8, kind: -1 },
  { id: ie.exportedMessageTotalCount, len: 8, kind: -1 },
  { id: ie.exportedFlowRecordTotalCount, len: 8, kind: -1 },
]);
// An options template record has a scope field count after the field count: 2 bytes more.
const OPTIONS_SETS_LEN = 4 + OPTIONS.templateLen + 2 + 4 + OPTIONS.recordLen;

export class IpfixEncoder extends MessageEncoder {
  readonly observationDomainId: number;
  private readonly v4: Template;
  private readonly v6: Template;
  private readonly systemInitMs: number;
  private optionRecords = 0;
  /** Data records sent before the current message (RFC 7011 §3.1), modulo 2^32. */
  sequence = 0;

  constructor(opts: IpfixOptions, onMessage: MessageHandler) {
    const biflow = opts.biflow ?? true;
    const v4 = ipfixTemplate(IPFIX_TEMPLATE_V4, 'ipv4', biflow);
    const v6 = ipfixTemplate(IPFIX_TEMPLATE_V6, 'ipv6', biflow);
    super(opts, onMessage, {
      headerLen: IPFIX_HEADER_LEN,
      templates: [v4, v6],
      templateBytes: 4 + v4.templateLen + v6.templateLen + (opts.exporterInfo ? OPTIONS_SETS_LEN : 0),
      uniflow: !biflow,
      padSets: false,
      bootMs: 0,
    });
    this.v4 = v4;
    this.v6 = v6;
    this.observationDomainId = opts.observationDomainId ?? 0;
    this.systemInitMs = opts.systemInitMs ?? 0;
    this.exporterInfo = opts.exporterInfo ?? false;
  }
  private readonly exporterInfo: boolean;

  /** A new transport session (TCP reconnect): sequence numbers start over, templates go first. */
  newSession(): void {
    this.sequence = 0;
    this.requestTemplates();
  }

  protected template(f: ExportFlow): Template {
    return f.family === 'ipv4' ? this.v4 : this.v6;
  }

  protected writeTemplates(o: number): number {
    const b = this.buf;
    const set = o;
    b.writeUInt16BE(ie.IPFIX_TEMPLATE_SET, o);
    o = this.writeTemplateRecords(o + 4, [this.v4, this.v6]);
    b.writeUInt16BE(o - set, set + 2);
    if (!this.exporterInfo) return o;
    // Options template set: the template record carries a scope field count.
    b.writeUInt16BE(ie.IPFIX_OPTIONS_TEMPLATE_SET, o);
    b.writeUInt16BE(4 + OPTIONS.templateLen + 2, o + 2);
    b.writeUInt16BE(OPTIONS.id, o + 4);
    b.writeUInt16BE(OPTIONS.fields.length, o + 6);
    b.writeUInt16BE(1, o + 8);
    o += 10;
    for (const f of OPTIONS.fields) {
      b.writeUInt16BE(f.id, o);
      b.writeUInt16BE(f.len, o + 2);
      o += 4;
    }
    // Its data record.
    b.writeUInt16BE(OPTIONS.id, o);
    b.writeUInt16BE(4 + OPTIONS.recordLen, o + 2);
    b.writeUInt32BE(this.observationDomainId, o + 4);
    b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(this.systemInitMs))), o + 8);
    b.writeBigUInt64BE(BigInt(this.counts.messages), o + 16);
    b.writeBigUInt64BE(BigInt(this.counts.records), o + 24);
    this.optionRecords++;
    return o + 4 + OPTIONS.recordLen;
  }

  protected finishHeader(len: number): void {
    const b = this.buf;
    b.writeUInt16BE(10, 0);
    b.writeUInt16BE(len, 2);
    b.writeUInt32BE(Math.floor(this.now() / 1000) >>> 0, 4);
    b.writeUInt32BE(this.sequence, 8);
    b.writeUInt32BE(this.observationDomainId >>> 0, 12);
    // Options data records are data records too (RFC 7011 §2).
    this.sequence = (this.sequence + this.msgRecords + this.optionRecords) >>> 0;
    this.optionRecords = 0;
  }
}
