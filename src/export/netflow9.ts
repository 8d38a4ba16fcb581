/**
 * NetFlow v9 (RFC 3954) packets: a 20-byte header (version 9, record count,
 * sysUptime, unix seconds, package sequence, source id), a template FlowSet
 * (id 0) when templates are due, and data FlowSets padded to 4 bytes.
 *
 * NetFlow v9 records are unidirectional: each connection gives a record for
 * its originating direction and, when answers were seen, one for the reply
 * direction. Its only times are FIRST/LAST_SWITCHED, in ms of sysUptime: the
 * header's sysUptime and unix seconds name the same instant (sysUptime =
 * unix_secs·1000 − boot), so a collector computing boot = unix_secs·1000 −
 * sysUptime gets the exact boot time and absolute times without rounding.
 */
import { type EncoderOptions, MessageEncoder, type MessageHandler } from './encoder.js';
import type { ExportFlow } from './flow.js';
import * as ie from './ie.js';
import { netflow9Template, type Template } from './template.js';

export interface Netflow9Options extends EncoderOptions {
  sourceId?: number;
  /** The exporter's boot time in ms since the epoch: sysUptime counts from it. Default: the OS boot time. */
  bootMs: number;
}

export const NF9_HEADER_LEN = 20;
export const NF9_TEMPLATE_V4 = 256;
export const NF9_TEMPLATE_V6 = 257;

export class Netflow9Encoder extends MessageEncoder {
  readonly sourceId: number;
  private readonly v4: Template;
  private readonly v6: Template;
  /** Packets sent before this one (RFC 3954: a count of export packets), modulo 2^32. */
  sequence = 0;
  private readonly boot: number;

  constructor(opts: Netflow9Options, onMessage: MessageHandler) {
    const v4 = netflow9Template(NF9_TEMPLATE_V4, 'ipv4');
    const v6 = netflow9Template(NF9_TEMPLATE_V6, 'ipv6');
    // Whole seconds, so that unix_secs·1000 − sysUptime is the boot time exactly.
    const boot = Math.floor(opts.bootMs / 1000) * 1000;
    super(opts, onMessage, {
      headerLen: NF9_HEADER_LEN,
      templates: [v4, v6],
      templateBytes: 4 + v4.templateLen + v6.templateLen,
      uniflow: true,
      padSets: true,
      bootMs: boot,
    });
    this.v4 = v4;
    this.v6 = v6;
    this.boot = boot;
    this.sourceId = opts.sourceId ?? 0;
  }

  protected template(f: ExportFlow): Template {
    return f.family === 'ipv4' ? this.v4 : this.v6;
  }

  protected writeTemplates(o: number): number {
    const set = o;
    this.buf.writeUInt16BE(ie.NF9_TEMPLATE_FLOWSET, o);
    o = this.writeTemplateRecords(o + 4, [this.v4, this.v6]);
    this.buf.writeUInt16BE(o - set, set + 2);
    return o;
  }

  protected finishHeader(_len: number): void {
    const b = this.buf;
    const secs = Math.floor(this.now() / 1000);
    b.writeUInt16BE(9, 0);
    // Count: template and data records in this packet.
    b.writeUInt16BE(this.msgRecords + this.msgTemplateRecords, 2);
    b.writeUInt32BE((secs * 1000 - this.boot) >>> 0, 4);
    b.writeUInt32BE(secs >>> 0, 8);
    b.writeUInt32BE(this.sequence, 12);
    b.writeUInt32BE(this.sourceId >>> 0, 16);
    this.sequence = (this.sequence + 1) >>> 0;
  }
}
