/**
 * Templates shared by the IPFIX and NetFlow v9 encoders: a template is a
 * list of fields (element id, length, enterprise number) each naming what it
 * takes from an ExportFlow; record-writer.ts compiles each template into
 * the straight-line code that writes its data records. All integers
 * big-endian (network order), as both RFCs require.
 */
import { ipv4Number, ipv6Bytes } from './addr.js';
import type { ExportFlow } from './flow.js';
import * as ie from './ie.js';

/** What a field takes from the flow (numbers: the hot loop switches on them). */
export const K = {
  SRC: 0,
  DST: 1,
  SPORT: 2,
  DPORT: 3,
  PROTO: 4,
  FLAGS: 5,
  ICMP: 6,
  BYTES: 7,
  PKTS: 8,
  RBYTES: 9,
  RPKTS: 10,
  START_MS: 11,
  END_MS: 12,
  FIRST_SWITCHED: 13,
  LAST_SWITCHED: 14,
  NAT_SRC: 15,
  NAT_DST: 16,
  NAT_SPORT: 17,
  NAT_DPORT: 18,
  REASON: 19,
} as const;

export interface Field {
  id: number;
  len: number;
  /** Private enterprise number (IPFIX only): RFC 5103's 29305 for reverse elements. */
  pen?: number;
  kind: number;
}

export interface Template {
  id: number;
  family: 'ipv4' | 'ipv6';
  fields: readonly Field[];
  /** Bytes of one data record. */
  recordLen: number;
  /** Bytes of the template record (in a template set / flowset). */
  templateLen: number;
}

export function makeTemplate(id: number, family: 'ipv4' | 'ipv6', fields: Field[]): Template {
  let recordLen = 0;
  let templateLen = 4;
  for (const f of fields) {
    recordLen += f.len;
    templateLen += f.pen === undefined ? 4 : 8;
  }
  return { id, family, fields, recordLen, templateLen };
}

/** Writes a template record (id, field count, field specifiers) at `o`; returns the offset after it. */
export function writeTemplateRecord(buf: Buffer, o: number, t: Template): number {
  buf.writeUInt16BE(t.id, o);
  buf.writeUInt16BE(t.fields.length, o + 2);
  o += 4;
  for (const f of t.fields) {
    buf.writeUInt16BE(f.pen === undefined ? f.id : f.id | 0x8000, o);
    buf.writeUInt16BE(f.len, o + 2);
    o += 4;
    if (f.pen !== undefined) {
      buf.writeUInt32BE(f.pen, o);
      o += 4;
    }
  }
  return o;
}

const v = (family: 'ipv4' | 'ipv6') => family === 'ipv4';

/** Address, port, protocol, ICMP and NAT fields common to every template. */
function keyFields(family: 'ipv4' | 'ipv6'): Field[] {
  const a = v(family) ? 4 : 16;
  return [
    { id: v(family) ? ie.sourceIPv4Address : ie.sourceIPv6Address, len: a, kind: K.SRC },
    { id: v(family) ? ie.destinationIPv4Address : ie.destinationIPv6Address, len: a, kind: K.DST },
    { id: ie.sourceTransportPort, len: 2, kind: K.SPORT },
    { id: ie.destinationTransportPort, len: 2, kind: K.DPORT },
    { id: ie.protocolIdentifier, len: 1, kind: K.PROTO },
    // tcpControlBits is unsigned16 since RFC 7125; one octet (reduced-size encoding) is what NetFlow and softflowd send.
    { id: ie.tcpControlBits, len: 1, kind: K.FLAGS },
    { id: v(family) ? ie.icmpTypeCodeIPv4 : ie.icmpTypeCodeIPv6, len: 2, kind: K.ICMP },
  ];
}

function natFields(family: 'ipv4' | 'ipv6'): Field[] {
  const a = v(family) ? 4 : 16;
  return [
    { id: v(family) ? ie.postNATSourceIPv4Address : ie.postNATSourceIPv6Address, len: a, kind: K.NAT_SRC },
    { id: v(family) ? ie.postNATDestinationIPv4Address : ie.postNATDestinationIPv6Address, len: a, kind: K.NAT_DST },
    { id: ie.postNAPTSourceTransportPort, len: 2, kind: K.NAT_SPORT },
    { id: ie.postNAPTDestinationTransportPort, len: 2, kind: K.NAT_DPORT },
  ];
}

/** IPFIX: absolute times; biflow adds RFC 5103's reverse counters. */
export function ipfixTemplate(id: number, family: 'ipv4' | 'ipv6', biflow: boolean): Template {
  const counters: Field[] = [
    { id: ie.octetDeltaCount, len: 8, kind: K.BYTES },
    { id: ie.packetDeltaCount, len: 8, kind: K.PKTS },
  ];
  if (biflow)
    counters.push(
      { id: ie.octetDeltaCount, len: 8, pen: ie.REVERSE_PEN, kind: K.RBYTES },
      { id: ie.packetDeltaCount, len: 8, pen: ie.REVERSE_PEN, kind: K.RPKTS },
    );
  return makeTemplate(id, family, [
    ...keyFields(family),
    ...counters,
    { id: ie.flowStartMilliseconds, len: 8, kind: K.START_MS },
    { id: ie.flowEndMilliseconds, len: 8, kind: K.END_MS },
    ...natFields(family),
    { id: ie.flowEndReason, len: 1, kind: K.REASON },
  ]);
}

/** NetFlow v9: one direction per record, times relative to sysUptime. */
export function netflow9Template(id: number, family: 'ipv4' | 'ipv6'): Template {
  return makeTemplate(id, family, [
    // NetFlow v9's ICMP_TYPE (32) serves both families (IPFIX split it into 32 and 139); nfdump reads only 32 in v9.
    ...keyFields(family).map((f) => (f.kind === K.ICMP ? { ...f, id: ie.ICMP_TYPE } : f)),
    { id: ie.IN_BYTES, len: 8, kind: K.BYTES },
    { id: ie.IN_PKTS, len: 8, kind: K.PKTS },
    { id: ie.FIRST_SWITCHED, len: 4, kind: K.FIRST_SWITCHED },
    { id: ie.LAST_SWITCHED, len: 4, kind: K.LAST_SWITCHED },
    ...natFields(family),
  ]);
}

export const REASONS: Record<ExportFlow['reason'], number> = ie.FLOW_END_REASON;

export function w16(b: Buffer, o: number, x: number): void {
  b[o] = x >>> 8;
  b[o + 1] = x;
}
export function w32(b: Buffer, o: number, x: number): void {
  b[o] = x >>> 24;
  b[o + 1] = x >>> 16;
  b[o + 2] = x >>> 8;
  b[o + 3] = x;
}
/** Unsigned 64-bit from a JS number (exact up to 2^53). */
export function w64(b: Buffer, o: number, x: number): void {
  if (x < 4294967296) {
    b[o] = 0;
    b[o + 1] = 0;
    b[o + 2] = 0;
    b[o + 3] = 0;
  } else w32(b, o, Math.floor(x / 4294967296));
  w32(b, o + 4, x >>> 0);
}

/** The roles of a flow's addresses in FlowAddresses. */
export const SRC = 0;
export const DST = 1;
export const RSRC = 2;
export const RDST = 3;
const NONE = Buffer.alloc(16);

/**
 * A flow's four addresses (src, dst, rsrc, rdst), parsed once for every
 * record written of it: a uniflow export writes each address in two roles
 * in each of two records. IPv4 texts are parsed once per flow and text:
 * without NAT the reply tuple repeats the original's two addresses, and the
 * two texts of the previous flow are remembered (a host's own address is in
 * most of its flows), so a flow usually costs one parse, not four.
 */
export class FlowAddresses {
  private readonly v4 = new Float64Array(4);
  private readonly v6: Buffer[] = [NONE, NONE, NONE, NONE];
  private family4 = true;
  /** The two IPv4 texts parsed last and their values ('' matches no address). */
  private text0 = '';
  private text1 = '';
  private value0 = 0;
  private value1 = 0;

  /** Parses the flow's addresses; throws for one that is not an address of the template's family. */
  prepare(f: ExportFlow, v4: boolean): void {
    this.family4 = v4;
    if (v4) {
      const a = this.v4;
      a[SRC] = this.ipv4(f.src);
      a[DST] = this.ipv4(f.dst);
      a[RSRC] = this.ipv4(f.rsrc);
      a[RDST] = this.ipv4(f.rdst);
    } else {
      const a = this.v6;
      a[SRC] = ipv6Bytes(f.src);
      a[DST] = ipv6Bytes(f.dst);
      a[RSRC] = ipv6Bytes(f.rsrc);
      a[RDST] = ipv6Bytes(f.rdst);
    }
  }

  private ipv4(text: string): number {
    if (text === this.text0) return this.value0;
    if (text === this.text1) return this.value1;
    const v = ipv4Number(text); // throws for a bad one, remembering nothing
    this.text1 = this.text0;
    this.value1 = this.value0;
    this.text0 = text;
    this.value0 = v;
    return v;
  }

  write(b: Buffer, o: number, i: number): void {
    if (this.family4) w32(b, o, this.v4[i]);
    else {
      const x = this.v6[i];
      for (let k = 0; k < 16; k++) b[o + k] = x[k];
    }
  }
}
