import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { AttrWriter, decodeAttrs } from '../../../src/netlink/attr.js';
import { NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_ERROR } from '../../../src/netlink/enums.js';
import { decodeError, encodeError, encodeMessage, splitMessages } from '../../../src/netlink/nlmsg.js';

describe('nlmsghdr framing', () => {
  it('splits a datagram of several messages, honouring 4-byte alignment', () => {
    const a = encodeMessage({ type: 0x100, flags: 2, seq: 7, pid: 0 }, Buffer.from([1, 2, 3]));
    const b = encodeMessage({ type: 3, flags: 2, seq: 7, pid: 0 }, Buffer.alloc(4));
    const msgs = splitMessages(Buffer.concat([a, b]));
    expect(msgs.map((m) => [m.type, m.flags, m.seq, m.payload.length])).toEqual([
      [0x100, 2, 7, 3],
      [3, 2, 7, 4],
    ]);
    expect([...msgs[0].payload]).toEqual([1, 2, 3]);
  });

  it('rejects a header whose length overruns the datagram', () => {
    const m = encodeMessage({ type: 1, flags: 0, seq: 1, pid: 0 }, Buffer.alloc(8));
    m.writeUInt32LE(200, 0);
    expect(() => splitMessages(m)).toThrow(DecodeError);
    expect(() => splitMessages(m.subarray(0, 10))).toThrow(/truncated nlmsghdr/);
  });

  it('decodes NLMSG_ERROR with the extended-ack message and offset', () => {
    const req = { type: 0x101, flags: 5, seq: 42, pid: 0 };
    const base = encodeError({ type: NLMSG_ERROR, flags: 0, seq: 42, pid: 0 }, 22, req);
    const tlvs = new AttrWriter().string(1, 'missing attribute').u32le(2, 20).toBuffer();
    const withAck = Buffer.concat([base, tlvs]);
    withAck.writeUInt32LE(withAck.length, 0);
    withAck.writeUInt16LE(NLM_F_CAPPED | NLM_F_ACK_TLVS, 6);
    const [msg] = splitMessages(withAck);
    const e = decodeError(msg);
    expect(e).toEqual({ errno: 22, request: req, extAckMessage: 'missing attribute', extAckOffset: 20 });
  });

  it('never throws anything but DecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          for (const m of splitMessages(Buffer.from(bytes))) if (m.type === NLMSG_ERROR) decodeError(m);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
    );
  });
});

describe('attributes', () => {
  it('writes big-endian values with host-order headers and padding, and reads them back', () => {
    const buf = new AttrWriter()
      .u8(1, 7)
      .u16be(2, 0x1234)
      .u32be(3, 0xdeadbeef)
      .u64be(4, 2n ** 40n)
      .string(5, 'ab')
      .toBuffer();
    const attrs = decodeAttrs(buf);
    expect(attrs.map((a) => a.type)).toEqual([1, 2, 3, 4, 5]);
    expect(attrs[1].value.readUInt16BE(0)).toBe(0x1234);
    expect(attrs[2].value.readUInt32BE(0)).toBe(0xdeadbeef);
    expect(attrs[3].value.readBigUInt64BE(0)).toBe(2n ** 40n);
    expect(attrs[4].value.toString()).toBe('ab\0');
    expect(buf.length % 4).toBe(0);
    expect(buf.readUInt16LE(0)).toBe(5); // header length counts the value, not the padding
  });

  it('marks nested attributes and rejects overrunning lengths', () => {
    const buf = new AttrWriter().nest(1, (w) => w.u32be(2, 9)).toBuffer();
    expect(decodeAttrs(buf)[0].nested).toBe(true);
    buf.writeUInt16LE(64, 0);
    expect(() => decodeAttrs(buf)).toThrow(DecodeError);
  });
});
