import fc from 'fast-check';
import type { ExportFlow } from '../../src/export/flow.js';
import type { ConntrackRecord } from '../../src/sources/conntrack/record.js';

export function ct(id: number, over: Partial<ConntrackRecord> = {}): ConntrackRecord {
  return {
    type: 'new',
    id,
    family: 'ipv4',
    proto: 'tcp',
    protonum: 6,
    orig: {
      src: `10.1.0.${id % 250}`,
      dst: '198.51.100.10',
      sport: 40000 + id,
      dport: 443,
      packets: id,
      bytes: id * 100,
    },
    reply: { src: '198.51.100.10', dst: `10.1.0.${id % 250}`, sport: 443, dport: 40000 + id, packets: 1, bytes: 60 },
    status: ['CONFIRMED'],
    ts: 1_700_000_000_000 + id,
    ...over,
  };
}

/** Random conntrack-shaped records, including IPv6 and ICMP ones and missing optional fields. */
export const ctRecord: fc.Arbitrary<ConntrackRecord> = fc
  .record({
    id: fc.nat(),
    v6: fc.boolean(),
    proto: fc.constantFrom('tcp', 'udp', 'icmp'),
    src4: fc.ipV4(),
    dst4: fc.ipV4(),
    sport: fc.integer({ min: 0, max: 65535 }),
    dport: fc.constantFrom(22, 53, 80, 443, 8080, 7007),
    packets: fc.option(fc.nat(1000), { nil: undefined }),
    status: fc.subarray(['ASSURED', 'SEEN_REPLY', 'CONFIRMED', 'DYING']),
    mark: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    state: fc.option(fc.constantFrom('ESTABLISHED', 'TIME_WAIT', 'SYN_SENT'), { nil: undefined }),
  })
  .map((x) => {
    const src = x.v6 ? `fd00::${(x.id % 65535).toString(16)}` : x.src4;
    const dst = x.v6 ? '2001:db8::1' : x.dst4;
    const end = (a: string, b: string) =>
      x.proto === 'icmp'
        ? { src: a, dst: b, icmp: { type: 8, code: 0, id: x.id % 65535 } }
        : {
            src: a,
            dst: b,
            sport: x.sport,
            dport: x.dport,
            ...(x.packets === undefined ? {} : { packets: x.packets, bytes: x.packets * 64 }),
          };
    const r: ConntrackRecord = {
      type: 'update',
      id: x.id,
      family: x.v6 ? 'ipv6' : 'ipv4',
      proto: x.proto,
      protonum: x.proto === 'tcp' ? 6 : x.proto === 'udp' ? 17 : 1,
      orig: end(src, dst),
      reply: end(dst, src),
      status: x.status,
      ts: 0,
    };
    if (x.mark !== undefined) r.mark = x.mark;
    if (x.state !== undefined) r.state = x.state;
    return r;
  });

/** A finished UDP flow to export, told apart by its ports (`base + i`). */
export function udpFlow(i: number, base = 10_000): ExportFlow {
  return {
    type: 'flow',
    family: 'ipv4',
    protonum: 17,
    proto: 'udp',
    src: '192.168.77.11',
    dst: '198.51.100.10',
    sport: base + i,
    dport: 7007,
    packets: 1,
    bytes: 100,
    rsrc: '198.51.100.10',
    rdst: '198.51.100.1',
    rsport: 7007,
    rdport: base + i,
    rpackets: 1,
    rbytes: 90,
    start: 1_700_000_000_000,
    end: 1_700_000_001_000,
    tcpFlags: 0,
    reason: 'end',
  };
}
