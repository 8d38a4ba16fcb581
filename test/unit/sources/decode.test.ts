import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { type CtEntry, decodeCtEntry, encodeCtEntry } from '../../../src/netlink/conntrack/entry.js';
import { decodeCtMessage } from '../../../src/netlink/conntrack/messages.js';
import type { CtTuple } from '../../../src/netlink/conntrack/tuple.js';
import { NFNL_SUBSYS_CTNETLINK } from '../../../src/netlink/nfnetlink.js';
import { conntrackRecordFromMessage, decodeConntrackRecord } from '../../../src/sources/conntrack/decode.js';
import { conntrackToJson } from '../../../src/sources/conntrack/json.js';
import { type ConntrackRecord, toConntrackRecord } from '../../../src/sources/conntrack/record.js';
import { fixtureMessages } from '../../helpers/fixtures.js';

const golden = [
  ...fixtureMessages('conntrack-dump', NFNL_SUBSYS_CTNETLINK),
  ...fixtureMessages('conntrack-events', NFNL_SUBSYS_CTNETLINK),
];

/** The reference path: the symmetric codec, then the mapping to a record. */
const reference = (m: (typeof golden)[number], now: number) => {
  const { kind, entry } = decodeCtMessage(m);
  return toConntrackRecord(kind, entry, now);
};

const addr = (v6: boolean) => (v6 ? fc.ipV6() : fc.ipV4());
const tuple = (v6: boolean, icmp: boolean): fc.Arbitrary<CtTuple> =>
  icmp
    ? fc.record({
        src: addr(v6),
        dst: addr(v6),
        protonum: fc.constant(v6 ? 58 : 1),
        icmp: fc.record({
          type: fc.integer({ min: 0, max: 255 }),
          code: fc.integer({ min: 0, max: 255 }),
          id: fc.integer({ min: 0, max: 65535 }),
        }),
      })
    : fc.record({
        src: addr(v6),
        dst: addr(v6),
        protonum: fc.constantFrom(6, 17, 132),
        sport: fc.integer({ min: 0, max: 65535 }),
        dport: fc.integer({ min: 0, max: 65535 }),
        zone: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
      });
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 53n + 2n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
const counters = fc.record({ packets: u64, bytes: u64 });
const entry: fc.Arbitrary<CtEntry> = fc.tuple(fc.boolean(), fc.boolean()).chain(([v6, icmp]) =>
  fc.record(
    {
      family: fc.constant(v6 ? 10 : 2),
      orig: tuple(v6, icmp),
      reply: tuple(v6, icmp),
      status: fc.integer({ min: 0, max: 0xffff }),
      tcp: fc.record({ state: fc.integer({ min: 0, max: 12 }) }),
      mark: fc.integer({ min: 0, max: 0xffffffff }),
      id: fc.integer({ min: 0, max: 0xffffffff }),
      timeout: fc.integer({ min: 0, max: 0xffffffff }),
      countersOrig: counters,
      countersReply: counters,
      zone: fc.integer({ min: 0, max: 65535 }),
      timestampStart: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      timestampStop: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      timestampEvent: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      helper: fc.constantFrom('ftp', 'sip', 'a"b\\c'),
      labels: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
    },
    { requiredKeys: ['family', 'orig', 'reply'] },
  ),
);

const attrs = (e: CtEntry) => encodeCtEntry(e).toBuffer();

describe('fast conntrack decoder', () => {
  it('equals the reference decoder on every golden message', () => {
    for (const m of golden) expect(conntrackRecordFromMessage(m, 1234)).toEqual(reference(m, 1234));
  });

  it('equals the reference decoder on random entries, including ms from ns timestamps exactly', () => {
    fc.assert(
      fc.property(entry, fc.constantFrom('dump', 'new', 'update', 'destroy' as const), (e, type) => {
        const b = attrs(e);
        const fast = decodeConntrackRecord(b, 0, b.length, e.family, type, 99, 'ns1');
        expect(fast).toEqual(toConntrackRecord(type, decodeCtEntry(b, 0, b.length, e.family), 99, 'ns1'));
      }),
      { numRuns: 500 },
    );
  });

  it('throws only DecodeError on truncated and corrupted input', () => {
    fc.assert(
      fc.property(entry, fc.nat(), fc.integer({ min: 0, max: 255 }), (e, at, v) => {
        const b = attrs(e);
        const cut = b.subarray(0, at % (b.length + 1));
        const flipped = Buffer.from(b);
        flipped[at % b.length] = v;
        for (const x of [cut, flipped]) {
          try {
            decodeConntrackRecord(x, 0, x.length, e.family, 'dump', 0);
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('shares frozen status arrays so no record can change another', () => {
    const [a, b] = golden.slice(0, 2).map((m) => conntrackRecordFromMessage(m, 0));
    expect(Object.isFrozen(a.status)).toBe(true);
    expect(() => (a.status as string[]).push('X')).toThrow();
    expect(b.status).not.toContain('X');
  });
});

describe('conntrack NDJSON', () => {
  it('parses back to the record, as JSON.stringify would give', () => {
    fc.assert(
      fc.property(entry, fc.boolean(), (e, withDelta) => {
        const r: ConntrackRecord = toConntrackRecord('destroy', e, 5, 'lab-router');
        if (withDelta) r.delta = { orig: { packets: 1, bytes: 2 }, reply: { packets: 3, bytes: 4 } };
        if (withDelta) r.resync = true;
        expect(JSON.parse(conntrackToJson(r))).toEqual(JSON.parse(JSON.stringify(r)));
      }),
      { numRuns: 300 },
    );
  });
});
