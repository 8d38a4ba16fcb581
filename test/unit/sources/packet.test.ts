/** Issue 14: parseIpPacket honours the UDP length and never passes a first fragment off as a whole datagram. */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { parseIpPacket } from '../../../src/sources/packet.js';

function ipv4Udp(udpLen: number, payload: Buffer, fragField = 0): Buffer {
  const b = Buffer.alloc(28 + payload.length);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(fragField, 6);
  b[8] = 64;
  b[9] = 17;
  b.set([10, 0, 0, 2], 12);
  b.set([10, 0, 0, 1], 16);
  b.writeUInt16BE(5353, 20);
  b.writeUInt16BE(53, 22);
  b.writeUInt16BE(udpLen, 24);
  payload.copy(b, 28);
  return b;
}

function ipv6Udp(fragOffsetAndM: number | undefined, payload: Buffer): Buffer {
  const udp = Buffer.alloc(8 + payload.length);
  udp.writeUInt16BE(5353, 0);
  udp.writeUInt16BE(53, 2);
  udp.writeUInt16BE(udp.length, 4);
  payload.copy(udp, 8);
  const frag = fragOffsetAndM === undefined ? Buffer.alloc(0) : Buffer.from([17, 0, 0, 0, 0, 0, 0, 7]);
  if (frag.length) frag.writeUInt16BE(fragOffsetAndM!, 2);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(frag.length + udp.length, 4);
  h[6] = frag.length ? 44 : 17;
  h[7] = 64;
  h[23] = 2;
  h[39] = 1;
  return Buffer.concat([h, frag, udp]);
}

describe('UDP length and IP fragments', () => {
  it('gives an empty payload for a zero-length datagram followed by garbage (dns-zlip)', () => {
    const p = parseIpPacket(ipv4Udp(8, Buffer.from('1234818000010001000000000161047465737400', 'hex')));
    expect(p).toMatchObject({ proto: 17, sport: 5353, dport: 53 });
    expect(p.data.length).toBe(0);
  });

  it('cuts the payload at the UDP length, and keeps what is there when the length runs past the capture', () => {
    expect(parseIpPacket(ipv4Udp(12, Buffer.from('abcdefgh'))).data.toString()).toBe('abcd');
    expect(parseIpPacket(ipv4Udp(400, Buffer.from('abcdefgh'))).data.toString()).toBe('abcdefgh');
  });

  it('rejects a UDP length under its own header with a DecodeError', () => {
    expect(() => parseIpPacket(ipv4Udp(5, Buffer.from('abcd')))).toThrow(DecodeError);
  });

  it('flags an IPv4 first fragment (MF, offset 0) and a later one', () => {
    const first = parseIpPacket(ipv4Udp(1400, Buffer.alloc(40), 0x2000));
    expect(first).toMatchObject({ firstFragment: true, sport: 5353, dport: 53 });
    expect(first.fragment).toBeUndefined();
    const later = parseIpPacket(ipv4Udp(8, Buffer.alloc(40), 0x2000 | 185));
    expect(later).toMatchObject({ fragment: true });
    expect(later.sport).toBeUndefined();
    expect(parseIpPacket(ipv4Udp(48, Buffer.alloc(40))).firstFragment).toBeUndefined();
  });

  it('flags an IPv6 first fragment, but not an atomic fragment (offset 0, no M)', () => {
    expect(parseIpPacket(ipv6Udp(1, Buffer.alloc(16)))).toMatchObject({ firstFragment: true, dport: 53 });
    const atomic = parseIpPacket(ipv6Udp(0, Buffer.alloc(16)));
    expect(atomic.firstFragment).toBeUndefined();
    expect(atomic.data.length).toBe(16);
    expect(parseIpPacket(ipv6Udp(8 << 3, Buffer.alloc(16)))).toMatchObject({ fragment: true, proto: 17 });
    expect(parseIpPacket(ipv6Udp(undefined, Buffer.alloc(16))).data.length).toBe(16);
  });
});
