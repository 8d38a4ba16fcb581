import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { decodeNflogPacket, encodeNflogPacket } from '../../../src/netlink/nflog/packet.js';
import { NFNL_SUBSYS_ULOG } from '../../../src/netlink/nfnetlink.js';
import { parseIpPacket } from '../../../src/sources/packet.js';
import { fixtureMessages, loadFixture } from '../../helpers/fixtures.js';
import { onlyDecodeErrors } from '../../helpers/fuzz.js';

const msgs = fixtureMessages('nflog-dns', NFNL_SUBSYS_ULOG).filter((m) => m.type === 0x400);

describe('nfnetlink_log golden bytes (captured from the real kernel)', () => {
  it('names the command that re-captures them', () => {
    expect(loadFixture('nflog-dns').command).toMatch(/capture-nflog\.js/);
  });

  it('decodes logged DNS packets: hooks, devices, sequence numbers, payloads', () => {
    const pkts = msgs.map((m) => decodeNflogPacket(m.payload));
    expect(pkts.length).toBeGreaterThan(15);
    expect(pkts.every((p) => p.group === 5)).toBe(true);
    expect(pkts.map((p) => p.seq)).toEqual(pkts.map((_, i) => i)); // F_SEQ: 0, 1, 2 … with no gaps
    const out = pkts.filter((p) => p.hook === 3);
    const inp = pkts.filter((p) => p.hook === 1);
    expect(out.every((p) => p.outdev !== undefined && p.timestamp === undefined)).toBe(true);
    // Only input packets carry the hardware address and a kernel timestamp (docs/kernel.md §3).
    expect(inp.every((p) => p.indev !== undefined && p.hwaddr?.length === 6 && p.timestamp !== undefined)).toBe(true);
    expect(pkts.some((p) => p.family === 10 && p.hwProtocol === 0x86dd)).toBe(true);
    const first = parseIpPacket(pkts[0].payload!);
    expect(first).toMatchObject({ family: 'ipv4', proto: 17, dport: 53, dst: '10.231.0.1' });
    expect(pkts[0].prefix).toBe('');
  });

  it('re-encodes every message to the very same bytes', () => {
    for (const m of msgs) {
      const { payload } = encodeNflogPacket(decodeNflogPacket(m.payload));
      expect(payload.equals(m.payload)).toBe(true);
    }
  });

  it('gives DecodeError, never another throw, on truncated, corrupted and random input', () => {
    const base = msgs[1].payload;
    onlyDecodeErrors(base, decodeNflogPacket);
  });
});

describe('IP header parsing', () => {
  it('reads IPv6 through extension headers and marks later fragments', () => {
    const v6 = msgs.map((m) => decodeNflogPacket(m.payload)).find((p) => p.family === 10)!;
    const p = parseIpPacket(v6.payload!);
    expect(p).toMatchObject({ family: 'ipv6', proto: 17, src: 'fd00:231::2', dst: 'fd00:231::1', dport: 53 });
    // Insert a hop-by-hop header (next header 0) in front of the UDP header.
    const b = Buffer.from(v6.payload!);
    const hbh = Buffer.from([b[6], 0, 1, 4, 0, 0, 0, 0]);
    const withExt = Buffer.concat([b.subarray(0, 40), hbh, b.subarray(40)]);
    withExt[6] = 0;
    withExt.writeUInt16BE(b.readUInt16BE(4) + 8, 4);
    expect(parseIpPacket(withExt)).toMatchObject({ proto: 17, dport: 53, sport: p.sport });
    const frag = Buffer.from(b.subarray(0, 40));
    frag[6] = 44;
    const later = Buffer.concat([frag, Buffer.from([17, 0, 0, 8 << 3, 0, 0, 0, 1]), Buffer.alloc(8)]);
    later.writeUInt16BE(16, 4);
    expect(parseIpPacket(later)).toMatchObject({ fragment: true, proto: 17 });
  });

  it('never throws anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom(0x45, 0x46, 0x60), (bytes, first) => {
        const b = Buffer.from(bytes);
        if (b.length) b[0] = first;
        try {
          parseIpPacket(b);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
