/**
 * The generated record writers (record-writer.ts) against a reference
 * written here, one switch per field: the same bytes and the same end offset
 * for every template the encoders use, both directions, any flow.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ExportFlow, type FlowEndReason, isIcmp } from '../../../src/export/flow.js';
import { recordWriter } from '../../../src/export/record-writer.js';
import {
  DST,
  FlowAddresses,
  ipfixTemplate,
  K,
  makeTemplate,
  netflow9Template,
  RDST,
  REASONS as REASON_CODES,
  RSRC,
  SRC,
  type Template,
  w16,
  w32,
  w64,
} from '../../../src/export/template.js';

const TEMPLATES: Template[] = [
  ipfixTemplate(256, 'ipv4', true),
  ipfixTemplate(257, 'ipv6', true),
  ipfixTemplate(258, 'ipv4', false),
  ipfixTemplate(259, 'ipv6', false),
  netflow9Template(260, 'ipv4'),
  netflow9Template(261, 'ipv6'),
];

/**
 * Writes one data record at `o` and returns the offset after it: the
 * reference, one switch per field. `addrs`
 * holds the flow's addresses, prepared for the template's family;
 * `reverse` writes the reply direction as a flow of its own (uniflow
 * export); `bootMs` anchors NetFlow v9's relative times.
 */
function writeRecord(
  b: Buffer,
  o: number,
  t: Template,
  f: ExportFlow,
  addrs: FlowAddresses,
  reverse: boolean,
  bootMs: number,
): number {
  const icmp = isIcmp(f.protonum);
  const fields = t.fields;
  for (let i = 0; i < fields.length; i++) {
    const fd = fields[i];
    switch (fd.kind) {
      case K.SRC:
        addrs.write(b, o, reverse ? RSRC : SRC);
        break;
      case K.DST:
        addrs.write(b, o, reverse ? RDST : DST);
        break;
      case K.SPORT:
        w16(b, o, icmp ? 0 : reverse ? f.rsport : f.sport);
        break;
      case K.DPORT:
      case K.ICMP: {
        // ICMP type and code go in the destination port too, as NetFlow collectors expect.
        const ic = reverse ? f.ricmp : f.icmp;
        w16(b, o, icmp ? (ic ? (ic.type << 8) | ic.code : 0) : fd.kind === K.ICMP ? 0 : reverse ? f.rdport : f.dport);
        break;
      }
      case K.PROTO:
        b[o] = f.protonum;
        break;
      case K.FLAGS:
        b[o] = f.protonum === 6 ? f.tcpFlags : 0;
        break;
      case K.BYTES:
        w64(b, o, reverse ? f.rbytes : f.bytes);
        break;
      case K.PKTS:
        w64(b, o, reverse ? f.rpackets : f.packets);
        break;
      case K.RBYTES:
        w64(b, o, f.rbytes);
        break;
      case K.RPKTS:
        w64(b, o, f.rpackets);
        break;
      case K.START_MS:
        w64(b, o, f.start);
        break;
      case K.END_MS:
        w64(b, o, f.end);
        break;
      case K.FIRST_SWITCHED:
        w32(b, o, Math.max(0, f.start - bootMs));
        break;
      case K.LAST_SWITCHED:
        w32(b, o, Math.max(0, f.end - bootMs));
        break;
      // Post-NAT fields come from the reply tuple: the reply's destination is where the original source went.
      case K.NAT_SRC:
        addrs.write(b, o, reverse ? DST : RDST);
        break;
      case K.NAT_DST:
        addrs.write(b, o, reverse ? SRC : RSRC);
        break;
      case K.NAT_SPORT:
        w16(b, o, icmp ? 0 : reverse ? f.dport : f.rdport);
        break;
      case K.NAT_DPORT:
        w16(b, o, icmp ? 0 : reverse ? f.sport : f.rsport);
        break;
      case K.REASON:
        b[o] = REASON_CODES[f.reason] ?? 0;
        break;
    }
    o += fd.len;
  }
  return o;
}

const REASONS: FlowEndReason[] = ['idle', 'active', 'end', 'forced', 'resources'];
const u16 = fc.integer({ min: 0, max: 65535 });
const count = fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const icmp = fc.option(fc.record({ type: fc.nat(255), code: fc.nat(255) }), { nil: undefined });

const flow = (family: 'ipv4' | 'ipv6') =>
  fc
    .record({
      protonum: fc.constantFrom(1, 6, 17, 58, 132),
      a: fc.array(family === 'ipv4' ? fc.ipV4() : fc.ipV6(), { minLength: 4, maxLength: 4 }),
      ports: fc.array(u16, { minLength: 4, maxLength: 4 }),
      counts: fc.array(count, { minLength: 4, maxLength: 4 }),
      start: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
      span: fc.nat(10_000_000),
      tcpFlags: fc.nat(255),
      reason: fc.constantFrom(...REASONS),
      icmp,
      ricmp: icmp,
    })
    .map(
      (x): ExportFlow => ({
        type: 'flow',
        family,
        protonum: x.protonum,
        proto: String(x.protonum),
        src: x.a[0],
        dst: x.a[1],
        rsrc: x.a[2],
        rdst: x.a[3],
        sport: x.ports[0],
        dport: x.ports[1],
        rsport: x.ports[2],
        rdport: x.ports[3],
        packets: x.counts[0],
        bytes: x.counts[1],
        rpackets: x.counts[2],
        rbytes: x.counts[3],
        start: x.start,
        end: x.start + x.span,
        tcpFlags: x.tcpFlags,
        reason: x.reason,
        ...(x.icmp ? { icmp: x.icmp } : {}),
        ...(x.ricmp ? { ricmp: x.ricmp } : {}),
      }),
    );

/** Both writers into buffers full of different garbage: bytes a writer skips would differ. */
function both(t: Template, f: ExportFlow, reverse: boolean, at: number, bootMs: number) {
  const addrs = new FlowAddresses();
  addrs.prepare(f, t.family === 'ipv4');
  const ref = Buffer.alloc(at + t.recordLen + 8, 0xaa);
  const gen = Buffer.alloc(at + t.recordLen + 8, 0xaa);
  const refEnd = writeRecord(ref, at, t, f, addrs, reverse, bootMs);
  const genEnd = recordWriter(t, reverse)(gen, at, f, addrs, bootMs);
  return { ref, gen, refEnd, genEnd };
}

describe('generated record writers', () => {
  for (const t of TEMPLATES) {
    it(`template ${t.id} (${t.family}, ${t.fields.length} fields): the reference's bytes, both directions`, () => {
      fc.assert(
        fc.property(flow(t.family), fc.boolean(), fc.nat(64), fc.nat(2_000_000_000_000), (f, reverse, at, boot) => {
          const r = both(t, f, reverse, at, boot);
          expect(r.genEnd).toBe(r.refEnd);
          expect(r.genEnd).toBe(at + t.recordLen);
          expect(r.gen.toString('hex')).toBe(r.ref.toString('hex'));
        }),
        { numRuns: 300 },
      );
    });
  }

  it('skips a field of a kind it does not know, as the reference does, and compiles once per template', () => {
    const t = makeTemplate(300, 'ipv4', [
      { id: 1, len: 3, kind: 99 },
      { id: 4, len: 1, kind: 4 },
    ]);
    const f = fc.sample(flow('ipv4'), 1)[0];
    const r = both(t, f, false, 0, 0);
    expect(r.gen.toString('hex')).toBe(r.ref.toString('hex'));
    expect(recordWriter(t, false)).toBe(recordWriter(t, false));
    expect(recordWriter(t, true)).not.toBe(recordWriter(t, false));
  });

  it('one FlowAddresses over many flows (addresses repeating, some bad) writes what a fresh one per flow writes', () => {
    const t = netflow9Template(262, 'ipv4');
    const pool = ['10.0.0.1', '10.0.0.2', '192.168.1.1', '10.0.0.1 ', '300.1.1.1', '8.8.8.8'];
    const addr = fc.constantFrom(...pool);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(flow('ipv4'), fc.array(addr, { minLength: 4, maxLength: 4 })), { maxLength: 30 }),
        (xs) => {
          const shared = new FlowAddresses();
          for (const [base, [src, dst, rsrc, rdst]] of xs) {
            const f = { ...base, src, dst, rsrc, rdst };
            const fresh = new FlowAddresses();
            let err: unknown;
            try {
              fresh.prepare(f, true);
            } catch (e) {
              err = e;
            }
            if (err) {
              expect(() => shared.prepare(f, true)).toThrow();
              continue;
            }
            shared.prepare(f, true);
            const a = Buffer.alloc(t.recordLen);
            const b = Buffer.alloc(t.recordLen);
            recordWriter(t, false)(a, 0, f, fresh, 0);
            recordWriter(t, false)(b, 0, f, shared, 0);
            expect(b.toString('hex')).toBe(a.toString('hex'));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a template whose field is not a plain integer kind and length', () => {
    const t = makeTemplate(301, 'ipv4', [{ id: 1, len: 2, kind: '1); process.exit(' as unknown as number }]);
    expect(() => recordWriter(t, false)).toThrow(/bad field/);
  });
});
