/**
 * IPFIX and NetFlow v9 encoders: whole messages against bytes written by
 * hand from the RFC layouts (RFC 7011 §3, RFC 5103 §6, RFC 3954 §5), then
 * sequence numbers, MTU splitting, template refresh and bad input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { messageBytesForMtu, PATH_MESSAGE_MAX } from '../../../src/export/collector.js';
import type { ExportFlow } from '../../../src/export/flow.js';
import { IpfixEncoder } from '../../../src/export/ipfix.js';
import { Netflow9Encoder } from '../../../src/export/netflow9.js';
import { hex, readMessage } from './wire.js';

const NOW = 1_700_000_006_000;
const BOOT = 1_699_990_000_000;

const tcp4: ExportFlow = {
  type: 'flow',
  family: 'ipv4',
  protonum: 6,
  proto: 'tcp',
  src: '192.168.77.11',
  dst: '198.51.100.10',
  sport: 40000,
  dport: 7007,
  packets: 10,
  bytes: 800,
  rsrc: '198.51.100.10',
  rdst: '198.51.100.1',
  rsport: 7007,
  rdport: 40000,
  rpackets: 8,
  rbytes: 1200,
  start: 1_700_000_000_123,
  end: 1_700_000_005_456,
  tcpFlags: 0x13,
  reason: 'end',
};

const icmp6: ExportFlow = {
  ...tcp4,
  family: 'ipv6',
  protonum: 58,
  proto: 'icmpv6',
  src: 'fd77::11',
  dst: '2001:db8:77::10',
  rsrc: '2001:db8:77::10',
  rdst: 'fd77::11',
  sport: 0,
  dport: 0,
  rsport: 0,
  rdport: 0,
  icmp: { type: 128, code: 0 },
  ricmp: { type: 129, code: 0 },
  tcpFlags: 0,
};

function collect() {
  const out: { msg: Buffer; records: number; templates: boolean }[] = [];
  return { out, on: (msg: Buffer, records: number, templates: boolean) => out.push({ msg, records, templates }) };
}

const IPFIX_V4_TEMPLATE = `
  0100 0012                                   # template 256, 18 fields
  0008 0004  000c 0004  0007 0002  000b 0002  # sourceIPv4Address, destinationIPv4Address, ports
  0004 0001  0006 0001  0020 0002             # protocolIdentifier, tcpControlBits (1 octet), icmpTypeCodeIPv4
  0001 0008  0002 0008                        # octetDeltaCount, packetDeltaCount
  8001 0008 00007279  8002 0008 00007279      # the same, reverse (E bit, PEN 29305)
  0098 0008  0099 0008                        # flowStartMilliseconds, flowEndMilliseconds
  00e1 0004  00e2 0004  00e3 0002  00e4 0002  # postNATSourceIPv4Address … postNAPTDestinationTransportPort
  0088 0001                                   # flowEndReason
`;
const IPFIX_V6_TEMPLATE = `
  0101 0012
  001b 0010  001c 0010  0007 0002  000b 0002  # sourceIPv6Address, destinationIPv6Address, ports
  0004 0001  0006 0001  008b 0002             # icmpTypeCodeIPv6
  0001 0008  0002 0008
  8001 0008 00007279  8002 0008 00007279
  0098 0008  0099 0008
  0119 0010  011a 0010  00e3 0002  00e4 0002  # postNATSourceIPv6Address, postNATDestinationIPv6Address
  0088 0001
`;

describe('IPFIX encoder', () => {
  it('writes header, templates, the options template and record, and a biflow data record byte for byte', () => {
    const c = collect();
    const e = new IpfixEncoder(
      { observationDomainId: 7, systemInitMs: BOOT, exporterInfo: true, now: () => NOW },
      c.on,
    );
    e.add(tcp4);
    e.flush();
    expect(c.out).toHaveLength(1);
    const golden = hex(`
      000a 0147  6553f106  00000000  00000007     # version 10, length 327, export time, sequence 0, domain 7
      0002 00ac                                   # template set, 172 bytes
      ${IPFIX_V4_TEMPLATE}
      ${IPFIX_V6_TEMPLATE}
      0003 001a                                   # options template set, 26 bytes
      0102 0004 0001                              # template 258, 4 fields, 1 scope field
      0095 0004  00a0 0008  0029 0008  002a 0008  # observationDomainId (scope), systemInitTimeMilliseconds, exported messages, records
      0102 0020                                   # its data set, 32 bytes
      00000007  0000018bcf4cd180  0000000000000000  0000000000000000
      0100 0051                                   # data set for template 256, 81 bytes
      c0a84d0b c633640a 9c40 1b5f  06 13 0000     # 192.168.77.11 → 198.51.100.10, 40000 → 7007, TCP, FIN|SYN|ACK
      0000000000000320 000000000000000a           # 800 bytes, 10 packets
      00000000000004b0 0000000000000008           # reverse: 1200 bytes, 8 packets
      0000018bcfe5687b 0000018bcfe57d50           # start, end (ms since the epoch)
      c6336401 c633640a 9c40 1b5f                 # post-NAT 198.51.100.1:40000 → 198.51.100.10:7007
      03                                          # flowEndReason: end of flow detected
    `);
    expect(c.out[0].msg.toString('hex')).toBe(golden.toString('hex'));
    expect(c.out[0]).toMatchObject({ records: 1, templates: true });
  });

  it('ICMPv6: type and code in icmpTypeCodeIPv6 and the destination port; no ports, no TCP flags', () => {
    const c = collect();
    const e = new IpfixEncoder({ now: () => NOW, templateRefreshPackets: 0, templateRefreshSeconds: 0 }, c.on);
    e.add(icmp6);
    e.flush();
    const data = readMessage(c.out[0].msg).sets.find((s) => s.id === 257)!;
    expect(data.body.toString('hex')).toBe(
      hex(`
        fd770000000000000000000000000011 20010db8007700000000000000000010
        0000 8000  3a 00 8000           # sport 0, dport 128.0, ICMPv6, no flags, icmpTypeCodeIPv6 128/0
        0000000000000320 000000000000000a 00000000000004b0 0000000000000008
        0000018bcfe5687b 0000018bcfe57d50
        fd770000000000000000000000000011 20010db8007700000000000000000010 0000 0000
        03`).toString('hex'),
    );
  });

  it('uniflow: two records per connection (reply direction with its own tuple), none for a reply that saw no packets', () => {
    const c = collect();
    const e = new IpfixEncoder({ biflow: false, now: () => NOW }, c.on);
    e.add(tcp4);
    e.add({ ...tcp4, rpackets: 0, rbytes: 0 });
    e.flush();
    const m = readMessage(c.out[0].msg);
    const data = m.sets.find((s) => s.id === 256)!;
    expect(c.out[0].records).toBe(3);
    const rec = 4 + 4 + 2 + 2 + 1 + 1 + 2 + 8 + 8 + 8 + 8 + 4 + 4 + 2 + 2 + 1;
    expect(data.body.length).toBe(3 * rec);
    const second = data.body.subarray(rec, 2 * rec);
    expect(second.subarray(0, 12).toString('hex')).toBe('c633640ac63364011b5f9c40'); // reply tuple
    expect(second.readBigUInt64BE(16)).toBe(1200n);
    expect(second.subarray(rec - 13, rec - 1).toString('hex')).toBe('c633640ac0a84d0b1b5f9c40'); // its post-NAT = orig reversed
  });

  it('sequence numbers count data records sent before each message (options records included)', () => {
    const c = collect();
    const e = new IpfixEncoder({ now: () => NOW, templateRefreshPackets: 2, exporterInfo: true }, c.on);
    for (let i = 0; i < 50; i++) e.add(i % 3 ? tcp4 : icmp6);
    e.flush();
    let expected = 0;
    for (const { msg, records, templates } of c.out) {
      expect(msg.readUInt32BE(8)).toBe(expected);
      expected += records + (templates ? 1 : 0);
    }
    expect(c.out.reduce((n, m) => n + m.records, 0)).toBe(50);
  });

  it('keeps every message within maxMessageBytes and splits sets cleanly, whatever the mix of families', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 600, max: 1500 }),
        fc.boolean(),
        (fams, max, biflow) => {
          const c = collect();
          const e = new IpfixEncoder({ now: () => NOW, maxMessageBytes: max, biflow }, c.on);
          for (const v6 of fams) e.add(v6 ? icmp6 : tcp4);
          e.flush();
          let records = 0;
          for (const { msg } of c.out) {
            expect(msg.length).toBeLessThanOrEqual(max);
            const m = readMessage(msg);
            for (const s of m.sets.filter((x) => x.id >= 256 && x.id !== 258))
              records += s.body.length / (s.id === 256 ? (biflow ? 77 : 61) : biflow ? 125 : 109);
          }
          // uniflow: tcp4 has reply packets (2 records), icmp6 too.
          expect(records).toBe(biflow ? fams.length : 2 * fams.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('resends templates every N messages and every T seconds, and when asked', () => {
    let now = NOW;
    const c = collect();
    const e = new IpfixEncoder({ now: () => now, templateRefreshPackets: 3, templateRefreshSeconds: 10 }, c.on);
    const send = () => {
      e.add(tcp4);
      e.flush();
    };
    for (let i = 0; i < 9; i++) send();
    expect(c.out.map((m) => m.templates)).toEqual([true, false, false, false, true, false, false, false, true]);
    now += 10_000;
    send();
    e.requestTemplates();
    send();
    send();
    expect(c.out.slice(9).map((m) => m.templates)).toEqual([true, true, false]);
    expect(e.counts.templates).toBe(5);
  });

  it('rejects a flow with a bad address with a clear error and keeps the message valid', () => {
    const c = collect();
    const e = new IpfixEncoder({ now: () => NOW }, c.on);
    e.add(tcp4);
    expect(() => e.add({ ...tcp4, src: 'fd77::1' })).toThrow(/not exportable.*not an IPv4 address/);
    expect(() => e.add({ ...tcp4, dst: 'nope' })).toThrow(/not an IP address/);
    e.add(tcp4);
    e.flush();
    const data = readMessage(c.out[0].msg).sets.find((s) => s.id === 256)!;
    expect(data.body.length).toBe(2 * 77);
    expect(c.out[0].records).toBe(2);
  });

  it('rejects a flow whose numbers do not fit their fields (they went out wrapped), in IPFIX and NetFlow v9 alike', () => {
    const bad: [Partial<ExportFlow>, RegExp][] = [
      [{ bytes: -5 }, /bytes -5 does not fit/],
      [{ packets: 2 ** 64 }, /packets 18446744073709552000 does not fit/],
      [{ rbytes: 1.5 }, /rbytes 1.5/],
      [{ protonum: 300 }, /protocol 300/],
      [{ dport: 70_000 }, /dport 70000/],
      [{ rsport: -1 }, /rsport -1/],
      [{ tcpFlags: 256 }, /tcpFlags 256/],
      [{ start: Number.NaN }, /time NaN/],
      [{ end: 2 ** 65 }, /time .*36893488147419103000 does not fit/],
      [{ icmp: { type: 256, code: 0 } }, /icmp 256\/0/],
    ];
    const encoders = [
      (on: ReturnType<typeof collect>['on']) => new IpfixEncoder({ now: () => NOW }, on),
      (on: ReturnType<typeof collect>['on']) => new Netflow9Encoder({ bootMs: BOOT, now: () => NOW }, on),
    ];
    for (const make of encoders) {
      const c = collect();
      const e = make(c.on);
      for (const [change, why] of bad) expect(() => e.add({ ...tcp4, ...change }), why.source).toThrow(why);
      // The largest values that fit go out.
      e.add({ ...tcp4, bytes: Number.MAX_SAFE_INTEGER, dport: 65535, protonum: 255, tcpFlags: 255 });
      e.flush();
      expect(c.out.map((m) => m.records).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    }
  });

  it('refuses a maxMessageBytes too small for templates and one record', () => {
    expect(() => new IpfixEncoder({ maxMessageBytes: 300, exporterInfo: true }, () => {})).toThrow(
      /maxMessageBytes must be/,
    );
  });

  it('takes a new message size between two flows: the open message goes out first, then messages fill the new size', () => {
    const c = collect();
    const e = new IpfixEncoder({ now: () => NOW }, c.on);
    for (let i = 0; i < 5; i++) e.add(tcp4);
    expect(e.maxMessageBytes).toBe(1400);
    e.setMaxMessageBytes(8972);
    // The five flows went out in the old size's message, before anything of the new size.
    expect(c.out.map((m) => m.records)).toEqual([5]);
    for (let i = 0; i < 300; i++) e.add(tcp4);
    e.flush();
    const sizes = c.out.slice(1).map((m) => m.msg.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(8972);
    expect(sizes[0]).toBeGreaterThan(8972 - 77);
    expect(c.out.reduce((n, m) => n + m.records, 0)).toBe(305);
    // Sequence numbers run on across the change.
    let expected = 0;
    for (const { msg, records } of c.out) {
      expect(msg.readUInt32BE(8)).toBe(expected);
      expected += records;
    }
    expect(() => e.setMaxMessageBytes(e.minMessageBytes - 1)).toThrow(/maxMessageBytes must be/);
    expect(() => e.setMaxMessageBytes(65536)).toThrow(/maxMessageBytes must be/);
    expect(() => e.setMaxMessageBytes(Number.NaN)).toThrow(/maxMessageBytes must be/);
    expect(e.maxMessageBytes).toBe(8972);
  });
});

describe('message size from the path MTU', () => {
  it('takes off the IPv4 or IPv6 and UDP headers, at most PATH_MESSAGE_MAX, at least the encoder minimum', () => {
    expect(messageBytesForMtu(1500, false, 200)).toBe(1472);
    expect(messageBytesForMtu(1500, true, 200)).toBe(1452);
    expect(messageBytesForMtu(1280, true, 200)).toBe(1232);
    expect(messageBytesForMtu(65536, false, 200)).toBe(PATH_MESSAGE_MAX);
    expect(messageBytesForMtu(9000, false, 200)).toBe(8972);
    expect(messageBytesForMtu(68, false, 300)).toBe(300);
  });
});

describe('NetFlow v9 encoder', () => {
  it('writes header, template FlowSet and two unidirectional records byte for byte', () => {
    const c = collect();
    const e = new Netflow9Encoder({ sourceId: 7, bootMs: BOOT, now: () => NOW }, c.on);
    e.add(tcp4);
    e.flush();
    const golden = hex(`
      0009 0004              # version 9, count 4 (2 template records + 2 data records)
      0098adf0               # sysUptime = unix_secs·1000 − boot
      6553f106 00000000 00000007   # unix secs, package sequence 0, source id 7
      0000 0084              # template FlowSet, 132 bytes
      0100 000f  0008 0004  000c 0004  0007 0002  000b 0002  0004 0001  0006 0001  0020 0002
                 0001 0008  0002 0008  0016 0004  0015 0004  00e1 0004  00e2 0004  00e3 0002  00e4 0002
      0101 000f  001b 0010  001c 0010  0007 0002  000b 0002  0004 0001  0006 0001  0020 0002
                 0001 0008  0002 0008  0016 0004  0015 0004  0119 0010  011a 0010  00e3 0002  00e4 0002
      0100 006c              # data FlowSet for template 256, 108 bytes (4-aligned, no padding needed)
      c0a84d0b c633640a 9c40 1b5f 06 13 0000  0000000000000320 000000000000000a
      009896fb 0098abd0      # FIRST_SWITCHED, LAST_SWITCHED (ms of sysUptime)
      c6336401 c633640a 9c40 1b5f
      c633640a c6336401 1b5f 9c40 06 13 0000  00000000000004b0 0000000000000008   # the reply direction
      009896fb 0098abd0
      c633640a c0a84d0b 1b5f 9c40
    `);
    expect(c.out[0].msg.toString('hex')).toBe(golden.toString('hex'));
  });

  it('pads data FlowSets to 4 bytes and counts packets in the sequence', () => {
    const c = collect();
    const e = new Netflow9Encoder({ bootMs: BOOT, now: () => NOW, maxMessageBytes: 700 }, c.on);
    for (let i = 0; i < 40; i++) e.add({ ...tcp4, rpackets: i % 2 ? 0 : 3 });
    e.flush();
    let records = 0;
    c.out.forEach(({ msg }, i) => {
      expect(msg.length).toBeLessThanOrEqual(700);
      expect(msg.readUInt32BE(12)).toBe(i);
      const m = readMessage(msg);
      let count = 0;
      for (const s of m.sets) {
        expect((s.body.length + 4) % 4).toBe(0);
        if (s.id === 0) count += 2;
        else {
          const n = Math.floor(s.body.length / 52);
          expect(s.body.length - n * 52).toBeLessThan(4);
          count += n;
          records += n;
        }
      }
      expect(m.lengthOrCount).toBe(count);
    });
    expect(records).toBe(60);
  });

  it('keeps sysUptime and unix secs consistent: unix_secs·1000 − sysUptime is the boot time', () => {
    const c = collect();
    const boot = 1_699_000_000_000;
    const e = new Netflow9Encoder({ bootMs: boot + 123, now: () => NOW + 987 }, c.on);
    e.add(tcp4);
    e.flush();
    const h = c.out[0].msg;
    expect(h.readUInt32BE(8) * 1000 - h.readUInt32BE(4)).toBe(boot);
    const data = readMessage(h).sets.find((s) => s.id === 256)!.body;
    expect(boot + data.readUInt32BE(32)).toBe(tcp4.start);
    expect(boot + data.readUInt32BE(36)).toBe(tcp4.end);
  });
});
