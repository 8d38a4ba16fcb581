import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIPv4Cached, formatIPv6, parseIP } from '../../../src/netlink/ip.js';

// The WHATWG URL parser serialises IPv6 hosts in RFC 5952 form: an independent reference.
const reference = (b: Buffer) =>
  new URL(`http://[${[...Array(8).keys()].map((i) => b.readUInt16BE(2 * i).toString(16)).join(':')}]/`).hostname.slice(
    1,
    -1,
  );

describe('IP text', () => {
  it('formats IPv6 as RFC 5952 does', () => {
    expect(formatIPv6(parseIP('2001:db8:0:0:1:0:0:1'), 0)).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(parseIP('::1'), 0)).toBe('::1');
    expect(formatIPv6(parseIP('fe80::'), 0)).toBe('fe80::');
    expect(formatIPv6(parseIP('::ffff:10.1.2.3'), 0)).toBe('::ffff:10.1.2.3');
  });

  it('agrees with the URL parser on random addresses and round-trips', () => {
    const groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
      minLength: 8,
      maxLength: 8,
    });
    fc.assert(
      fc.property(groups, (g) => {
        const b = Buffer.alloc(16);
        for (const [i, x] of g.entries()) b.writeUInt16BE(x, 2 * i);
        if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return; // mapped form differs by design
        const text = formatIPv6(b, 0);
        expect(text).toBe(reference(b));
        expect(parseIP(text).equals(b)).toBe(true);
      }),
    );
  });

  it('parses IPv4', () => {
    expect([...parseIP('192.168.1.20')]).toEqual([192, 168, 1, 20]);
    expect(() => parseIP('300.1.1.1')).toThrow(/not an IP/);
  });

  it('formats IPv4 as the dotted quad, through its cache or not, at any offset (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 12 }), fc.nat(8), (bytes, at) => {
        const b = Buffer.from(bytes);
        const o = Math.min(at, b.length - 4);
        const want = [...b.subarray(o, o + 4)].join('.');
        // Twice: a miss builds the text, a hit returns the cached one.
        expect(formatIPv4Cached(b, o)).toBe(want);
        expect(formatIPv4Cached(b, o)).toBe(want);
      }),
      { numRuns: 2000 },
    );
    expect(formatIPv4Cached(Buffer.from([255, 255, 255, 255]), 0)).toBe('255.255.255.255');
    expect(formatIPv4Cached(Buffer.from([0, 0, 0, 0]), 0)).toBe('0.0.0.0');
  });
});
