/** Reproducers from issue 14: netlink framing that lies about lengths must give typed errors or best-effort results. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { align4, decodeError, splitMessages, splitMessagesLenient } from '../../../src/netlink/nlmsg.js';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('hostile netlink framing', () => {
  it('decodes an ACK_TLVS error whose echoed length overflows 32-bit alignment, best effort', () => {
    const [m] = splitMessages(hex('24000000020000020100000000000000eaffffff00000080000000000000000000000000'));
    const e = decodeError(m);
    expect(e.errno).toBe(22);
    expect(e.request).toEqual({ type: 0, flags: 0, seq: 0, pid: 0 });
    expect(e.extAckMessage).toBeUndefined();
  });

  it('align4 stays exact above 2^31 (the bitwise form wrapped negative)', () => {
    expect(align4(0x7ffffffd)).toBe(0x80000000);
    expect(align4(0xffffffff)).toBe(0x100000000);
    expect(align4(5)).toBe(8);
    expect(align4(8)).toBe(8);
  });

  it('returns the valid messages before trailing garbage and counts the garbage', () => {
    const buf = hex('14000000030002000000000000000000616263641400000003000200000000000000000061626364cafebabecafebabe');
    const msgs = splitMessages(buf);
    expect(msgs.map((m) => [m.type, m.payload.toString()])).toEqual([
      [3, 'abcd'],
      [3, 'abcd'],
    ]);
    const r = splitMessagesLenient(buf);
    expect(r.messages).toHaveLength(2);
    expect(r.trailing).toMatchObject({ bytes: 8, offset: 40 });
  });

  it('still throws DecodeError when not one message is valid', () => {
    expect(() => splitMessages(hex('cafebabecafebabe'))).toThrow(DecodeError);
  });

  it('lenient splitting never throws, and accounts for every byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        const r = splitMessagesLenient(b);
        const last = r.messages.at(-1);
        if (r.trailing) expect(r.trailing.offset + r.trailing.bytes).toBe(b.length);
        else if (last)
          expect(last.payload.byteOffset + last.payload.length - b.byteOffset).toBeLessThanOrEqual(b.length);
        for (const m of r.messages) if (m.type === 2) expect(() => decodeError(m)).not.toThrow(RangeError);
      }),
      { numRuns: 2000 },
    );
  });
});
