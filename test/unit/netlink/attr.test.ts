import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { AttrReader, AttrWriter, decodeAttrs } from '../../../src/netlink/attr.js';

/** Everything a reader can say about a list: per attribute its header facts and every accessor's answer. */
function readAll(buf: Buffer, start: number, end: number): unknown[] {
  const out: unknown[] = [];
  const r = new AttrReader('test').reset(buf, start, end);
  const inner = new AttrReader('test');
  const said = (err: DecodeError) => `error: ${err.message.replace(/ at byte \d+$/, '')} @${err.offset - start}`;
  const attempt = (f: () => unknown) => {
    try {
      const v = f();
      return Buffer.isBuffer(v) ? v.toString('hex') : v;
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      return said(err);
    }
  };
  try {
    while (r.next()) {
      expect(r.valueStart).toBe(r.offset + 4);
      expect(r.offset).toBeGreaterThanOrEqual(start);
      expect(r.valueEnd).toBeLessThanOrEqual(end);
      out.push({
        at: r.offset - start,
        type: r.type(),
        nested: r.isNested(),
        len: r.len(),
        u8: attempt(() => r.u8()),
        u16: attempt(() => r.u16()),
        u32: attempt(() => r.u32()),
        u64: attempt(() => r.u64()),
        u16be: attempt(() => r.u16be()),
        u32be: attempt(() => r.u32be()),
        u64be: attempt(() => r.u64be()),
        u64beBig: attempt(() => r.u64beBig()),
        view: attempt(() => r.view()),
        bytes: attempt(() => r.bytes()),
        string: attempt(() => r.string()),
        hex: attempt(() => r.hex()),
        ip: attempt(() => r.ip()),
        inner: attempt(() => {
          const xs: number[] = [];
          r.nested(inner);
          while (inner.next()) xs.push(inner.type(), inner.len());
          return xs;
        }),
      });
      if (out.length > (end - start) / 4) throw new Error('more attributes than 4-byte headers fit');
    }
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    out.push(said(err));
  }
  return out;
}

/** Attribute lists that are mostly well formed (some nested), then a few bytes overwritten: the interesting inputs. */
const nearlyValid = fc
  .tuple(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 20 }), fc.boolean()), {
      maxLength: 6,
    }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
    fc.nat(),
  )
  .map(([attrs, flips, cut]) => {
    const w = new AttrWriter();
    for (const [t, v, nest] of attrs) {
      if (nest) w.nest(t & 0x3fff, (n) => n.bytes(t >> 8, Buffer.from(v)));
      else w.bytes(t & 0x3fff, Buffer.from(v));
    }
    const b = w.toBuffer();
    for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
    return new Uint8Array(b.subarray(0, b.length ? cut % (b.length + 1) : 0));
  });

describe('AttrReader', () => {
  it('reads back what AttrWriter wrote, nested lists included', () => {
    const buf = new AttrWriter()
      .u8(1, 0xab)
      .u16be(2, 0x1234)
      .u32be(3, 0xdeadbeef)
      .u64be(4, 2n ** 53n - 1n)
      .u32le(5, 0x01020304)
      .string(6, 'eth0')
      .bytes(7, Buffer.from([127, 0, 0, 1]))
      .bytes(8, Buffer.from('20010db8000000000000000000000001', 'hex'))
      .nest(9, (n) => n.u16be(1, 80).u16be(2, 443))
      .toBuffer();
    const r = new AttrReader('test').reset(buf);
    const seen: unknown[] = [];
    while (r.next()) {
      switch (r.type()) {
        case 1:
          seen.push(r.u8());
          break;
        case 2:
          seen.push(r.u16be());
          break;
        case 3:
          seen.push(r.u32be());
          break;
        case 4:
          seen.push(r.u64be(), r.u64beBig());
          break;
        case 5:
          seen.push(r.u32(), r.u16());
          break;
        case 6:
          seen.push(r.string(), r.len());
          break;
        case 7:
        case 8:
          seen.push(r.ip());
          break;
        case 9: {
          expect(r.isNested()).toBe(true);
          const n = r.nested();
          while (n.next()) seen.push([n.type(), n.u16be()]);
          break;
        }
      }
    }
    expect(seen).toEqual([
      0xab,
      0x1234,
      0xdeadbeef,
      2 ** 53 - 1,
      2n ** 53n - 1n,
      0x01020304,
      0x0304,
      'eth0',
      5,
      '127.0.0.1',
      '2001:db8::1',
      [1, 80],
      [2, 443],
    ]);
  });

  it('reports short values, bad headers and bad addresses as DecodeError with the offset and op', () => {
    const buf = new AttrWriter().u16be(1, 7).bytes(2, Buffer.alloc(5)).toBuffer();
    const r = new AttrReader('my op').reset(buf);
    expect(r.next()).toBe(true);
    expect(() => r.u32be()).toThrow(/attribute needs 4 bytes, has 2/);
    expect(() => r.need(3, 'struct foo')).toThrow(/struct foo needs 3 bytes, has 2/);
    expect(r.next()).toBe(true);
    expect(() => r.ip()).toThrow(/address of 5 bytes/);
    try {
      r.u64be();
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DecodeError);
      expect((err as DecodeError).offset).toBe(8);
      expect((err as DecodeError).message).toMatch(/my op/);
    }
    expect(r.next()).toBe(false);
    const bad = Buffer.from(buf);
    bad.writeUInt16LE(200, 8);
    const b = new AttrReader('x').reset(bad);
    expect(b.next()).toBe(true);
    expect(() => b.next()).toThrow(/attribute length 200 overruns its container/);
    expect(() => new AttrReader('x').reset(buf, 0, 3).next()).toThrow(/truncated attribute header/);
  });

  it('a nested reader stays inside its parent value', () => {
    const buf = new AttrWriter()
      .nest(1, (n) => n.u32be(1, 1))
      .u32be(2, 2)
      .toBuffer();
    const r = new AttrReader('t').reset(buf);
    r.next();
    const n = r.nested();
    const types: number[] = [];
    while (n.next()) types.push(n.type());
    expect(types).toEqual([1]);
    // A nested length pointing past the parent's value fails, though the bytes exist in the buffer.
    const bad = Buffer.from(buf);
    bad.writeUInt16LE(16, 4);
    const m = new AttrReader('t').reset(bad);
    m.next();
    expect(() => m.nested().next()).toThrow(/overruns its container/);
  });

  it('random and truncated lists: only DecodeError, never a read outside [start, end)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 96 }), nearlyValid),
        fc.uint8Array({ minLength: 0, maxLength: 8 }),
        fc.integer({ min: 0, max: 8 }),
        (body, fill, after) => {
          // The same bytes framed by different neighbours must read the same: nothing outside the range counts.
          const frame = (pad: number) =>
            Buffer.concat([Buffer.alloc(fill.length, pad), Buffer.from(body), Buffer.alloc(after, pad)]);
          const a = readAll(frame(0x00), fill.length, fill.length + body.length);
          const b = readAll(frame(0xff), fill.length, fill.length + body.length);
          expect(a).toEqual(b);
          // And the same as the bytes alone in a buffer of their own.
          expect(readAll(Buffer.from(body), 0, body.length)).toEqual(a);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('every truncation of a valid list reads a prefix of it, then at most one DecodeError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 0x3fff }), fc.uint8Array({ maxLength: 20 })), { maxLength: 6 }),
        fc.nat(),
        (attrs, cut) => {
          const w = new AttrWriter();
          for (const [t, v] of attrs) w.bytes(t, Buffer.from(v));
          const buf = w.toBuffer();
          const whole = decodeAttrs(buf);
          const end = buf.length ? cut % (buf.length + 1) : 0;
          let got: ReturnType<typeof decodeAttrs> = [];
          const r = new AttrReader('t').reset(buf, 0, end);
          try {
            while (r.next()) got.push(r.raw());
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
            got = [...got, { type: -1, nested: false, value: Buffer.alloc(0) }];
          }
          const ok = got.filter((x) => x.type >= 0);
          expect(ok).toEqual(whole.slice(0, ok.length));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
