/**
 * Issue 14: the fast conntrack decoder and the reference codec agree on every
 * input — same record, or both a DecodeError — including repeated, missing
 * and wrongly sized attributes; counters past 2^53 saturate visibly in both.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/netlink/conntrack/enums.js';
import { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import { attr, bothCt, plain, prng, randomCtAttrs } from '../../helpers/ct-tree.js';

const nest = (type: number, ...kids: Buffer[]) => attr(type, Buffer.concat(kids), true);
const u8 = (t: number, v: number) => attr(t, Buffer.from([v]));
const u16 = (t: number, v: number) => attr(t, Buffer.from([v >> 8, v & 255]));
const u64 = (t: number, v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return attr(t, b);
};
const ip4 = (t: number, s: string) => attr(t, Buffer.from(s.split('.').map(Number)));
const tuple = (type: number, ports: { sport?: number; dport?: number }, zone?: number) =>
  nest(
    type,
    nest(C.CTA_TUPLE_IP, ip4(C.CTA_IP_V4_SRC, '10.0.0.1'), ip4(C.CTA_IP_V4_DST, '10.0.0.2')),
    nest(
      C.CTA_TUPLE_PROTO,
      u8(C.CTA_PROTO_NUM, 6),
      ...(ports.sport === undefined ? [] : [u16(C.CTA_PROTO_SRC_PORT, ports.sport)]),
      ...(ports.dport === undefined ? [] : [u16(C.CTA_PROTO_DST_PORT, ports.dport)]),
    ),
    ...(zone === undefined ? [] : [u16(C.CTA_TUPLE_ZONE, zone)]),
  );

/** Both decoders on `b`: asserts they agree and returns the record (or 'decode' when both refused). */
function agreed(b: Buffer) {
  const { fast, reference } = bothCt(b);
  expect(plain(fast)).toEqual(plain(reference));
  return 'ok' in fast ? fast.ok : 'decode';
}

describe('fast vs reference conntrack decoder', () => {
  it('TCP protoinfo without a state: no state in either', () => {
    const r = agreed(
      Buffer.concat([tuple(1, { sport: 1, dport: 2 }), nest(C.CTA_PROTOINFO, nest(C.CTA_PROTOINFO_TCP, u8(2, 7)))]),
    );
    expect(r).not.toBe('decode');
    expect((r as ConntrackRecord).state).toBeUndefined();
  });

  it('two helper names: the last wins, as nla_parse keeps the last', () => {
    const name = (s: string) => attr(C.CTA_HELP_NAME, Buffer.from(`${s}\0`));
    const r = agreed(nest(C.CTA_HELP, name('ftp'), name('sip'))) as ConntrackRecord;
    expect(r.helper).toBe('sip');
  });

  it('a tuple with dport but no sport keeps its dport', () => {
    const r = agreed(tuple(C.CTA_TUPLE_ORIG, { dport: 53 })) as ConntrackRecord;
    expect(r.orig).toMatchObject({ dport: 53 });
    expect(r.orig.sport).toBeUndefined();
  });

  it('repeated orig/reply tuples and repeated protoinfo: the last replaces the first whole', () => {
    const tcp = (state?: number) =>
      nest(
        C.CTA_PROTOINFO,
        nest(C.CTA_PROTOINFO_TCP, ...(state === undefined ? [] : [u8(C.CTA_PROTOINFO_TCP_STATE, state)])),
      );
    const r = agreed(
      Buffer.concat([
        tuple(C.CTA_TUPLE_ORIG, { sport: 1, dport: 2 }, 5),
        tuple(C.CTA_TUPLE_ORIG, { dport: 9 }),
        tuple(C.CTA_TUPLE_REPLY, { sport: 3, dport: 4 }),
        tuple(C.CTA_TUPLE_REPLY, { sport: 7 }),
        tcp(3),
        tcp(),
      ]),
    ) as ConntrackRecord;
    expect(r.orig).toEqual({ src: '10.0.0.1', dst: '10.0.0.2', dport: 9 });
    expect(r.reply).toEqual({ src: '10.0.0.1', dst: '10.0.0.2', sport: 7 });
    expect(r.state).toBeUndefined();
  });

  it.each([
    ['master tuple', nest(C.CTA_TUPLE_MASTER, nest(C.CTA_TUPLE_PROTO, attr(C.CTA_PROTO_SRC_PORT, Buffer.from([1]))))],
    ['use', attr(C.CTA_USE, Buffer.from([0, 1]))],
    ['secmark', attr(C.CTA_SECMARK, Buffer.from([0, 0, 1]))],
    ['tuple zone', nest(C.CTA_TUPLE_ORIG, attr(C.CTA_TUPLE_ZONE, Buffer.from([1])))],
    [
      'TCP flags',
      nest(C.CTA_PROTOINFO, nest(C.CTA_PROTOINFO_TCP, attr(C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, Buffer.from([1])))),
    ],
    [
      'TCP window scale',
      nest(C.CTA_PROTOINFO, nest(C.CTA_PROTOINFO_TCP, attr(C.CTA_PROTOINFO_TCP_WSCALE_REPLY, Buffer.alloc(0)))),
    ],
  ])('a short %s is a DecodeError in both', (_, b) => {
    expect(agreed(b)).toBe('decode');
  });

  it('directional zones become orig.zone and reply.zone', () => {
    const r = agreed(
      Buffer.concat([tuple(1, { sport: 1, dport: 2 }, 7), tuple(2, { sport: 2, dport: 1 }, 9)]),
    ) as ConntrackRecord;
    expect([r.orig.zone, r.reply.zone]).toEqual([7, 9]);
  });

  it.each([
    [2n ** 53n - 1n, Number.MAX_SAFE_INTEGER, false],
    [2n ** 53n + 1n, Number.MAX_SAFE_INTEGER, true],
    [2n ** 64n - 1n, Number.MAX_SAFE_INTEGER, true],
    [12345n, 12345, false],
  ])('counter %s is exact or saturated visibly, and passes the schema', (v, want, sat) => {
    const b = nest(C.CTA_COUNTERS_ORIG, u64(C.CTA_COUNTERS_PACKETS, v), u64(C.CTA_COUNTERS_BYTES, 1n));
    const r = agreed(b) as ConntrackRecord;
    expect(r.orig.packets).toBe(want);
    expect(r.orig.bytes).toBe(1);
    expect(r.orig.saturated).toBe(sat ? true : undefined);
    expect(ConntrackRecord.safeParse(r).success).toBe(true);
  });

  it('agree on random attribute trees, malformed ones included (differential property)', () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const b = randomCtAttrs(prng(seed));
        const { fast, reference } = bothCt(b, seed & 1 ? 10 : 2);
        expect(plain(fast)).toEqual(plain(reference));
        if ('ok' in fast) expect(ConntrackRecord.safeParse(fast.ok).success).toBe(true);
        else refused++;
      }),
      { numRuns: 3000 },
    );
    // The generator must exercise both outcomes, or the property proves little.
    expect(refused).toBeGreaterThan(100);
    expect(refused).toBeLessThan(2900);
  }, 60_000); // 3000 cases: ~2 s idle, over 5 s on a loaded CI machine
});
