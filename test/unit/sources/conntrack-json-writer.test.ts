import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/netlink/conntrack/enums.js';
import { NLM_F_CREATE, NLM_F_MULTI } from '../../../src/netlink/enums.js';
import { NFNL_SUBSYS_CTNETLINK } from '../../../src/netlink/nfnetlink.js';
import { conntrackRecordAt } from '../../../src/sources/conntrack/decode.js';
import { conntrackToJson } from '../../../src/sources/conntrack/json.js';
import { ConntrackJsonWriter, WRITER_CHUNKS } from '../../../src/sources/conntrack/json-writer.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import { prng, randomCtAttrs } from '../../helpers/ct-tree.js';
import { fixtureMessages } from '../../helpers/fixtures.js';

const base: ConntrackRecord = {
  type: 'dump',
  id: 3_912_345_678,
  family: 'ipv4',
  proto: 'udp',
  protonum: 17,
  orig: { src: '10.0.0.2', dst: '10.0.0.9', sport: 40000, dport: 53, packets: 1, bytes: 61 },
  reply: { src: '10.0.0.9', dst: '10.0.0.2', sport: 53, dport: 40000, packets: 0, bytes: 0 },
  status: Object.freeze(['CONFIRMED']) as string[],
  timeout: 29,
  start: 1_795_433_474_054,
  ts: 1_795_433_475_001,
};

const variants: ConntrackRecord[] = [
  base,
  { ...base, type: 'new', orig: { src: '::1', dst: 'fe80::1:2', sport: 0, dport: 9 }, family: 'ipv6', status: [] },
  {
    ...base,
    proto: 'icmp',
    protonum: 1,
    orig: { src: '1.2.3.4', dst: '5.6.7.8', icmp: { type: 8, code: 0, id: 65535 } },
    reply: { src: '5.6.7.8', dst: '1.2.3.4', icmp: { type: 0, code: 0, id: 65535 } },
    state: 'ESTABLISHED',
    mark: 0xffffffff,
    zone: 7,
    stop: 1_795_433_475_000.5,
    helper: 'ftp"\\\n\u00e9\u{1f600}',
    labels: '0x1',
    delta: { orig: { packets: 5, bytes: 500 }, reply: { packets: 0, bytes: 0 } },
    resync: true,
    netns: 'lab-1',
    ts: 0,
  },
  { ...base, id: 0, timeout: 9, start: -1, ts: Number.MAX_SAFE_INTEGER + 2 },
  // Saturated counters and a tuple's own zone belong to the end they describe.
  { ...base, type: 'update', orig: { ...base.orig, packets: Number.MAX_SAFE_INTEGER, saturated: true, zone: 3 } },
  { ...base, type: 'destroy', family: 'ipv6', reply: { ...base.reply, zone: 0 } },
];

function written(recs: ConntrackRecord[], sinkIsSync = false): string {
  const parts: Buffer[] = [];
  const sink = { write: (b: Uint8Array) => parts.push(Buffer.from(b)) };
  if (sinkIsSync) Object.defineProperty(sink, 'constructor', { value: { name: 'SyncWriteStream' } });
  const w = new ConntrackJsonWriter(sink);
  for (const r of recs) w.record(r);
  w.flush();
  return Buffer.concat(parts).toString('utf8');
}

describe('ConntrackJsonWriter', () => {
  it('writes exactly what conntrackToJson does, one line per record', () => {
    expect(written(variants)).toBe(variants.map((r) => `${conntrackToJson(r)}\n`).join(''));
    for (const line of written(variants).trimEnd().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('fills and flushes its buffer over many records, to sync and async sinks alike', () => {
    const many = Array.from({ length: 9000 }, (_, i) => ({ ...base, id: i, ts: base.ts + i }));
    const want = many.map((r) => `${conntrackToJson(r)}\n`).join('');
    expect(written(many)).toBe(want);
    expect(written(many, true)).toBe(want);
  });

  it('copes with a string longer than its whole buffer', () => {
    const huge = { ...base, helper: 'x'.repeat(3 << 20), labels: '\u00e9'.repeat(1 << 20) };
    expect(written([base, huge, base])).toBe([base, huge, base].map((r) => `${conntrackToJson(r)}\n`).join(''));
  });

  it('never loses a byte near the end of its buffer: long addresses, a string that fills it exactly', () => {
    const CHUNK = WRITER_CHUNKS.max;
    const cases: ConntrackRecord[][] = [
      [{ ...base, orig: { ...base.orig, src: 'a'.repeat(CHUNK + 100) } }],
      // About 1 MiB of records, then an 8 KiB address: it starts close to the end of a chunk.
      [
        ...Array.from({ length: 2900 }, (_, i) => ({ ...base, id: i })),
        { ...base, reply: { ...base.reply, dst: 'b'.repeat(8192) } },
      ],
    ];
    // A helper that ends exactly at the end of the first chunk, and one at the end of a full-size one.
    const one = written([base]).length;
    const head = `${conntrackToJson({ ...base, helper: '' })}`.indexOf('"helper":""') + '"helper":"'.length;
    for (const size of [WRITER_CHUNKS.first, CHUNK]) {
      const before = Math.floor(size / one) - 1;
      cases.push([
        ...Array.from({ length: before }, () => base),
        { ...base, helper: 'h'.repeat(size - before * one - head - 1) },
        base,
      ]);
    }
    for (const recs of cases) expect(written(recs)).toBe(recs.map((r) => `${conntrackToJson(r)}\n`).join(''));
  });

  it('sends its first lines after a small chunk, then chunks twice as big each time up to the largest', () => {
    for (const sync of [false, true]) {
      const sizes: number[] = [];
      const sink = { write: (b: Uint8Array) => sizes.push(b.length) };
      if (sync) Object.defineProperty(sink, 'constructor', { value: { name: 'SyncWriteStream' } });
      const w = new ConntrackJsonWriter(sink);
      const one = written([base]).length;
      // Enough lines for the chunks to reach the largest size and fill it several times.
      const lines = Math.ceil((4 * WRITER_CHUNKS.max) / one);
      for (let i = 0; i < lines; i++) w.record(base);
      // The first chunk went out before the writer saw a tenth of the lines.
      expect(sizes.length).toBeGreaterThan(3);
      expect(sizes[0]).toBeLessThanOrEqual(WRITER_CHUNKS.first);
      expect(sizes[0]).toBeGreaterThan(WRITER_CHUNKS.first / 2);
      let room = WRITER_CHUNKS.first;
      for (const n of sizes) {
        // Each chunk is sent when the next line may not fit in it: never more than its size, never half empty.
        expect(n).toBeLessThanOrEqual(room);
        expect(n).toBeGreaterThan(room / 2);
        room = Math.min(2 * room, WRITER_CHUNKS.max);
      }
      expect(room).toBe(WRITER_CHUNKS.max);
      w.flush();
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(lines * one);
    }
  });

  it('writes what conntrackToJson does for any record (property), and both are JSON where the values are', () => {
    const num = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.maxSafeNat(),
      fc.constantFrom(-0, 1e21, 2 ** 53 + 2, 999_999_999, 1_000_000_000, 5e-7),
    );
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.constantFrom('"', '\\', '\u2028', '\ud800', '\x7f', '\x00', 'fe80::1%ethé', 'constructor', '__proto__'),
    );
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const end = fc.record(
      {
        src: text,
        dst: text,
        sport: opt(num),
        dport: opt(num),
        icmp: opt(fc.record({ type: num, code: num, id: num })),
        packets: opt(num),
        bytes: opt(num),
        saturated: opt(fc.constant(true as const)),
        zone: opt(num),
      },
      { requiredKeys: ['src', 'dst'] },
    );
    const rec = fc.record(
      {
        type: fc.oneof(fc.constantFrom('dump', 'new', 'update', 'destroy', 'toString', '__proto__'), text),
        id: num,
        family: fc.oneof(fc.constantFrom('ipv4', 'ipv6', 'constructor', 'valueOf'), text),
        proto: text,
        protonum: num,
        orig: end,
        reply: end,
        state: opt(text),
        status: fc.array(text, { maxLength: 4 }),
        mark: opt(num),
        zone: opt(num),
        timeout: opt(num),
        start: opt(num),
        stop: opt(num),
        helper: opt(text),
        labels: opt(text),
        resync: opt(fc.constant(true as const)),
        netns: opt(text),
        ts: num,
      },
      { requiredKeys: ['type', 'id', 'family', 'proto', 'protonum', 'orig', 'reply', 'status', 'ts'] },
    ) as unknown as fc.Arbitrary<ConntrackRecord>;
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 4 }), (recs) => {
        expect(written(recs)).toBe(recs.map((r) => `${conntrackToJson(r)}\n`).join(''));
        // Strings of any kind come out as JSON strings (numbers that JSON cannot hold aside).
        for (const r of recs) {
          if (
            [r.id, r.protonum, r.ts, r.orig.sport, r.orig.packets, r.orig.bytes].some(
              (n) => n !== undefined && !Number.isFinite(n),
            )
          )
            continue;
          if (
            [
              r.mark,
              r.zone,
              r.timeout,
              r.start,
              r.stop,
              r.reply.sport,
              r.reply.dport,
              r.orig.dport,
              r.reply.packets,
              r.reply.bytes,
              r.orig.zone,
              r.reply.zone,
            ].some((n) => n !== undefined && !Number.isFinite(n))
          )
            continue;
          if ([r.orig.icmp, r.reply.icmp].some((c) => c && ![c.type, c.code, c.id].every(Number.isFinite))) continue;
          const back = JSON.parse(conntrackToJson(r));
          expect([back.type, back.family, back.orig.src, back.reply.dst]).toEqual([
            r.type,
            r.family,
            r.orig.src,
            r.reply.dst,
          ]);
        }
      }),
      { numRuns: 1500 },
    );
  });
});

describe('ConntrackJsonWriter.message (the kernel bytes straight to a line)', () => {
  const CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_NEW;
  const CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_DELETE;
  const golden = [
    ...fixtureMessages('conntrack-dump', NFNL_SUBSYS_CTNETLINK),
    ...fixtureMessages('conntrack-events', NFNL_SUBSYS_CTNETLINK),
  ];
  type Msg = { payload: Buffer; type: number; flags: number };
  type Outcome = { line: string } | { error: string };

  /** Each message through `write`, in one writer: the lines, or the error each threw. */
  function run(msgs: Msg[], write: (w: ConntrackJsonWriter, m: Msg) => void): { outs: Outcome[]; transcoded: number } {
    const parts: Buffer[] = [];
    const w = new ConntrackJsonWriter({ write: (b: Uint8Array) => parts.push(Buffer.from(b)) });
    const outs: Outcome[] = [];
    for (const m of msgs) {
      try {
        write(w, m);
        w.flush();
        outs.push({ line: Buffer.concat(parts.splice(0)).toString('utf8') });
      } catch (err) {
        outs.push({ error: `${(err as Error).constructor.name}: ${(err as Error).message}` });
      }
    }
    return { outs, transcoded: w.transcoded };
  }
  /** The reference: the decoder's record through record(), with the dump's zone check. */
  const viaRecord = (netns?: string, zone?: number) => (w: ConntrackJsonWriter, m: Msg) => {
    const r = conntrackRecordAt(m.payload, 0, m.payload.length, m.type, m.flags, 1234, netns);
    if (zone === undefined || (r.zone ?? 0) === zone) w.record(r);
  };
  const viaMessage = (netns?: string, zone?: number) => (w: ConntrackJsonWriter, m: Msg) => {
    w.message(m.payload, 0, m.payload.length, m.type, m.flags, 1234, netns, zone);
  };

  it('writes every golden kernel message as record() writes its decoded record, mostly without making one', () => {
    for (const [netns, zone] of [
      [undefined, undefined],
      ['lab-1', undefined],
      [undefined, 0],
      ['x"\u00e9', 7],
    ] as const) {
      const want = run(golden, viaRecord(netns, zone));
      const got = run(golden, viaMessage(netns, zone));
      expect(got.outs).toEqual(want.outs);
      expect(want.outs.every((o) => 'line' in o)).toBe(true);
    }
    expect(run(golden, viaMessage()).transcoded).toBeGreaterThan(golden.length / 2);
    // Zone 7 matches nothing captured: every line is empty.
    expect(run(golden, viaMessage(undefined, 7)).outs.every((o) => 'line' in o && o.line === '')).toBe(true);
  });

  it('lands byte for byte across buffer ends, over many messages', () => {
    const many = Array.from({ length: 12_000 }, (_, i) => golden[i % golden.length]);
    const all = (write: (w: ConntrackJsonWriter, m: Msg) => void) => {
      const parts: Buffer[] = [];
      const w = new ConntrackJsonWriter({ write: (b: Uint8Array) => parts.push(Buffer.from(b)) });
      for (const m of many) write(w, m);
      w.flush();
      return Buffer.concat(parts).toString('utf8');
    };
    const want = all(viaRecord('ns-a'));
    expect(want.length).toBeGreaterThan(1 << 21);
    expect(all(viaMessage('ns-a'))).toBe(want);
  });

  it('agrees with the decoder on random attribute trees, malformed ones included: same line or same error (differential property)', () => {
    let refused = 0;
    let transcoded = 0;
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 4 }), (seed, kind) => {
        const attrs = randomCtAttrs(prng(seed));
        const payload = Buffer.concat([Buffer.from([seed & 1 ? 10 : 2, 0, 0, 0]), attrs]);
        const [type, flags] = [
          [CT_NEW, NLM_F_MULTI],
          [CT_NEW, NLM_F_CREATE],
          [CT_NEW, 0],
          [CT_DELETE, 0],
          [(9 << 8) | 1, 0], // not ctnetlink
        ][kind];
        const msgs = [
          { payload, type, flags },
          { payload: payload.subarray(0, seed & 3), type, flags },
        ];
        const want = run(msgs, viaRecord('n', seed & 4 ? 0 : undefined));
        const got = run(msgs, viaMessage('n', seed & 4 ? 0 : undefined));
        expect(got.outs).toEqual(want.outs);
        if ('error' in want.outs[0]) refused++;
        transcoded += got.transcoded;
      }),
      { numRuns: 3000 },
    );
    // Both ways must be exercised: refusals, and lines written without a record.
    expect(refused).toBeGreaterThan(300);
    expect(transcoded).toBeGreaterThan(300);
  }, 60_000);
});
