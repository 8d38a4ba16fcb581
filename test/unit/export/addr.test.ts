/**
 * The hand-written IPv4 parser of the encoders' hot path agrees with the
 * general parser: the same number for every address it takes, an error for
 * everything the general parser refuses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4Number, ipv6Bytes } from '../../../src/export/addr.js';
import { parseIP } from '../../../src/netlink/ip.js';

function reference(text: string): number | 'error' {
  try {
    const b = parseIP(text);
    if (b.length !== 4) return 'error';
    return b.readUInt32BE(0);
  } catch {
    return 'error';
  }
}

function ours(text: string): number | 'error' {
  try {
    return ipv4Number(text);
  } catch (err) {
    expect((err as Error).message).toMatch(/address/);
    return 'error';
  }
}

describe('export address parsing', () => {
  it('dotted quads: the same 32-bit value as the general parser', () => {
    fc.assert(
      fc.property(fc.ipV4(), (a) => {
        expect(ours(a)).toBe(reference(a));
        expect(ours(a)).toBe(a.split('.').reduce((x, p) => x * 256 + Number(p), 0));
      }),
    );
  });

  it('anything else: refused exactly when the general parser refuses it (or the address is IPv6)', () => {
    const near = fc
      .array(fc.constantFrom('0', '1', '9', '25', '255', '256', '0377', '.', ':', 'a', ' ', '-'), { maxLength: 9 })
      .map((xs) => xs.join(''));
    fc.assert(
      fc.property(fc.oneof(near, fc.string(), fc.ipV6()), (text) => {
        expect(ours(text)).toBe(reference(text));
      }),
    );
    expect(() => ipv4Number('fd77::1')).toThrow(/not an IPv4 address/);
  });

  it('IPv6: the 16 bytes, and an error for an IPv4 address', () => {
    expect([...ipv6Bytes('2001:db8:77::10')]).toEqual([...parseIP('2001:db8:77::10')]);
    expect(() => ipv6Bytes('192.168.77.1')).toThrow(/not an IPv6 address/);
  });
});
