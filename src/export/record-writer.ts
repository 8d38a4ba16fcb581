/**
 * A template's data record writer as straight-line generated code: one
 * statement per field at a constant offset, the direction (forward or the
 * reply as a flow of its own) fixed per function, so nothing is decided per
 * field at run time. It writes exactly what `writeRecord` (template.ts, the
 * reference) writes; a unit test holds the two equal on every template.
 */
import type { ExportFlow } from './flow.js';
import { DST, type FlowAddresses, K, RDST, REASONS, RSRC, SRC, type Template, w16, w32, w64 } from './template.js';

/** Writes one data record of its template at `o`; returns the offset after it. */
export type RecordWriter = (b: Buffer, o: number, f: ExportFlow, addrs: FlowAddresses, bootMs: number) => number;

const compiled = new WeakMap<Template, [RecordWriter, RecordWriter]>();

/** The writer of `t`'s records, forward or `reverse` (compiled once per template). */
export function recordWriter(t: Template, reverse: boolean): RecordWriter {
  let pair = compiled.get(t);
  if (!pair) {
    pair = [compile(t, false), compile(t, true)];
    compiled.set(t, pair);
  }
  return pair[reverse ? 1 : 0];
}

/** The statement writing field `kind` at `at` (an expression of `o`), as writeRecord's switch does. */
function statement(kind: number, at: string, reverse: boolean): string {
  const pick = (fwd: string, rev: string) => (reverse ? rev : fwd);
  switch (kind) {
    case K.SRC:
      return `a.write(b, ${at}, ${pick(`${SRC}`, `${RSRC}`)});`;
    case K.DST:
      return `a.write(b, ${at}, ${pick(`${DST}`, `${RDST}`)});`;
    case K.SPORT:
      return `w16(b, ${at}, icmp ? 0 : f.${pick('sport', 'rsport')});`;
    case K.DPORT:
    case K.ICMP: {
      // ICMP type and code go in the destination port too, as NetFlow collectors expect.
      const other = kind === K.ICMP ? '0' : `f.${pick('dport', 'rdport')}`;
      return `{ const ic = f.${pick('icmp', 'ricmp')}; w16(b, ${at}, icmp ? (ic ? (ic.type << 8) | ic.code : 0) : ${other}); }`;
    }
    case K.PROTO:
      return `b[${at}] = f.protonum;`;
    case K.FLAGS:
      return `b[${at}] = f.protonum === 6 ? f.tcpFlags : 0;`;
    case K.BYTES:
      return `w64(b, ${at}, f.${pick('bytes', 'rbytes')});`;
    case K.PKTS:
      return `w64(b, ${at}, f.${pick('packets', 'rpackets')});`;
    case K.RBYTES:
      return `w64(b, ${at}, f.rbytes);`;
    case K.RPKTS:
      return `w64(b, ${at}, f.rpackets);`;
    case K.START_MS:
      return `w64(b, ${at}, f.start);`;
    case K.END_MS:
      return `w64(b, ${at}, f.end);`;
    case K.FIRST_SWITCHED:
      return `w32(b, ${at}, Math.max(0, f.start - bootMs));`;
    case K.LAST_SWITCHED:
      return `w32(b, ${at}, Math.max(0, f.end - bootMs));`;
    // Post-NAT fields come from the reply tuple: the reply's destination is where the original source went.
    case K.NAT_SRC:
      return `a.write(b, ${at}, ${pick(`${RDST}`, `${DST}`)});`;
    case K.NAT_DST:
      return `a.write(b, ${at}, ${pick(`${RSRC}`, `${SRC}`)});`;
    case K.NAT_SPORT:
      return `w16(b, ${at}, icmp ? 0 : f.${pick('rdport', 'dport')});`;
    case K.NAT_DPORT:
      return `w16(b, ${at}, icmp ? 0 : f.${pick('rsport', 'sport')});`;
    case K.REASON:
      return `b[${at}] = R[f.reason] ?? 0;`;
    default:
      return ''; // a kind writeRecord does not know either: its bytes are skipped
  }
}

function compile(t: Template, reverse: boolean): RecordWriter {
  const lines: string[] = [];
  let off = 0;
  for (const fd of t.fields) {
    // Field kinds and lengths are small integers of our own templates: nothing from outside reaches the source.
    if (!Number.isInteger(fd.kind) || !Number.isInteger(fd.len) || fd.len < 0)
      throw new Error(`template ${t.id}: bad field ${JSON.stringify(fd)}`);
    const s = statement(fd.kind, `o + ${off}`, reverse);
    if (s) lines.push(`  ${s}`);
    off += fd.len;
  }
  const src = `"use strict";
const { w16, w32, w64, R } = E;
return (b, o, f, a, bootMs) => {
  const icmp = f.protonum === 1 || f.protonum === 58;
${lines.join('\n')}
  return o + ${off};
};`;
  return new Function('E', src)({ w16, w32, w64, R: REASONS }) as RecordWriter;
}
