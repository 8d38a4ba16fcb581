/**
 * Random ctnetlink attribute trees for the differential test and the fuzzer:
 * mostly the shapes the kernel sends, with repeated attributes, missing
 * ones, wrong value lengths, unknown types, stray bytes and cut buffers.
 * Driven by a plain PRNG so the fuzzer can run it without fast-check.
 */
import { DecodeError } from '../../src/errors.js';
import { decodeCtEntry } from '../../src/netlink/conntrack/entry.js';
import * as C from '../../src/netlink/conntrack/enums.js';
import { decodeConntrackRecord } from '../../src/sources/conntrack/decode.js';
import { type ConntrackRecord, toConntrackRecord } from '../../src/sources/conntrack/record.js';

export type Rand = () => number;

/** mulberry32: small, fast, seedable. */
export function prng(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

export function attr(type: number, value: Buffer, nested = false): Buffer {
  const b = Buffer.alloc((4 + value.length + 3) & ~3);
  b.writeUInt16LE(4 + value.length, 0);
  b.writeUInt16LE(type | (nested ? 0x8000 : 0), 2);
  value.copy(b, 4);
  return b;
}
const nest = (type: number, kids: Buffer[]) => attr(type, Buffer.concat(kids), true);

/** Bytes of a value: usually `size`, sometimes one off or random, so length checks are exercised. */
function value(r: Rand, size: number): Buffer {
  const roll = r();
  const n = roll < 0.97 ? size : roll < 0.985 ? Math.max(0, size - 1 - int(r, size)) : size + 1 + int(r, 4);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r() < 0.7 ? int(r, 256) : pick(r, [0, 0xff, 0x7f, 0x80]);
  // Counters and timestamps near 2^53 and 2^64.
  if (n === 8 && r() < 0.3) b.writeBigUInt64BE(pick(r, [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n]));
  return b;
}

/** Each child is repeated, dropped or joined by an unknown sibling now and then. */
function kids(r: Rand, make: Array<() => Buffer>): Buffer[] {
  const out: Buffer[] = [];
  for (const m of make) {
    const roll = r();
    if (roll < 0.1) continue;
    out.push(m());
    if (roll > 0.9) out.push(m());
  }
  if (r() < 0.1) out.push(attr(20 + int(r, 40), value(r, int(r, 9))));
  if (r() < 0.2) {
    for (let i = out.length - 1; i > 0; i--) {
      const j = int(r, i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
  }
  return out;
}

function tuple(r: Rand, type: number): Buffer {
  const v6 = r() < 0.3;
  const a = v6 ? 16 : 4;
  const icmp = r() < 0.2;
  // Now and then an ICMP nest with ports too (no kernel sends one; the decoders must still agree on it).
  const mixed = icmp && r() < 0.3;
  const ip = () =>
    nest(
      C.CTA_TUPLE_IP,
      kids(r, [
        () => attr(v6 ? C.CTA_IP_V6_SRC : C.CTA_IP_V4_SRC, value(r, a)),
        () => attr(v6 ? C.CTA_IP_V6_DST : C.CTA_IP_V4_DST, value(r, a)),
      ]),
    );
  const proto = () =>
    nest(
      C.CTA_TUPLE_PROTO,
      kids(
        r,
        icmp
          ? [
              () => attr(C.CTA_PROTO_NUM, value(r, 1)),
              () => attr(pick(r, [C.CTA_PROTO_ICMP_ID, C.CTA_PROTO_ICMPV6_ID]), value(r, 2)),
              () => attr(pick(r, [C.CTA_PROTO_ICMP_TYPE, C.CTA_PROTO_ICMPV6_TYPE]), value(r, 1)),
              () => attr(pick(r, [C.CTA_PROTO_ICMP_CODE, C.CTA_PROTO_ICMPV6_CODE]), value(r, 1)),
              ...(mixed
                ? [() => attr(C.CTA_PROTO_SRC_PORT, value(r, 2)), () => attr(C.CTA_PROTO_DST_PORT, value(r, 2))]
                : []),
            ]
          : [
              () => attr(C.CTA_PROTO_NUM, value(r, 1)),
              () => attr(C.CTA_PROTO_SRC_PORT, value(r, 2)),
              () => attr(C.CTA_PROTO_DST_PORT, value(r, 2)),
            ],
      ),
    );
  const make = [ip, proto];
  if (r() < 0.3) make.push(() => attr(C.CTA_TUPLE_ZONE, value(r, 2)));
  return nest(type, kids(r, make));
}

const u = (t: number, size: number) => (r: Rand) => attr(t, value(r, size));
const counters = (t: number) => (r: Rand) =>
  nest(t, kids(r, [() => u(C.CTA_COUNTERS_PACKETS, 8)(r), () => u(C.CTA_COUNTERS_BYTES, 8)(r)]));

const TOP: Array<(r: Rand) => Buffer> = [
  (r) => tuple(r, C.CTA_TUPLE_ORIG),
  (r) => tuple(r, C.CTA_TUPLE_REPLY),
  (r) => tuple(r, C.CTA_TUPLE_MASTER),
  u(C.CTA_STATUS, 4),
  (r) =>
    nest(
      C.CTA_PROTOINFO,
      kids(r, [
        () =>
          nest(
            C.CTA_PROTOINFO_TCP,
            kids(r, [
              () => u(C.CTA_PROTOINFO_TCP_STATE, 1)(r),
              () => u(C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 1)(r),
              () => u(C.CTA_PROTOINFO_TCP_WSCALE_REPLY, 1)(r),
              () => u(C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, 2)(r),
              () => u(C.CTA_PROTOINFO_TCP_FLAGS_REPLY, 2)(r),
            ]),
          ),
        () => nest(2 + int(r, 2), [u(1, 1)(r)]), // DCCP, SCTP: kept raw
      ]),
    ),
  (r) => nest(C.CTA_HELP, kids(r, [() => attr(C.CTA_HELP_NAME, Buffer.from(`${pick(r, ['ftp', 'sip', 'a"b'])}\0`))])),
  u(C.CTA_TIMEOUT, 4),
  u(C.CTA_MARK, 4),
  counters(C.CTA_COUNTERS_ORIG),
  counters(C.CTA_COUNTERS_REPLY),
  u(C.CTA_USE, 4),
  u(C.CTA_ID, 4),
  u(C.CTA_SECMARK, 4),
  u(C.CTA_ZONE, 2),
  (r) => nest(C.CTA_TIMESTAMP, kids(r, [() => u(C.CTA_TIMESTAMP_START, 8)(r), () => u(C.CTA_TIMESTAMP_STOP, 8)(r)])),
  u(C.CTA_TIMESTAMP_EVENT, 8),
  (r) => attr(C.CTA_LABELS, value(r, 16)),
];

/** One random attribute list (what follows nfgenmsg), sometimes cut or with a byte changed. */
export function randomCtAttrs(r: Rand): Buffer {
  let b = Buffer.concat(
    kids(
      r,
      TOP.map((f) => () => f(r)),
    ),
  );
  const roll = r();
  if (roll < 0.1 && b.length) b = b.subarray(0, int(r, b.length));
  else if (roll < 0.2 && b.length) {
    b = Buffer.from(b);
    b[int(r, b.length)] = int(r, 256);
  } else if (roll < 0.25) b = Buffer.concat([b, value(r, int(r, 6))]);
  return b;
}

export type CtOutcome = { ok: ConntrackRecord } | { error: 'decode' };

function outcome(f: () => ConntrackRecord): CtOutcome {
  try {
    return { ok: f() };
  } catch (err) {
    if (err instanceof DecodeError) return { error: 'decode' };
    throw err; // an untyped error: the caller's test fails on it
  }
}

/** Plain data for comparison: undefined-valued keys dropped, key order irrelevant (isDeepStrictEqual). */
export const plain = (o: CtOutcome): unknown => JSON.parse(JSON.stringify(o));

/** The fast decoder and the reference codec on the same bytes. */
export function bothCt(b: Buffer, family = 2): { fast: CtOutcome; reference: CtOutcome } {
  return {
    fast: outcome(() => decodeConntrackRecord(b, 0, b.length, family, 'destroy', 7, 'ns')),
    reference: outcome(() => toConntrackRecord('destroy', decodeCtEntry(b, 0, b.length, family), 7, 'ns')),
  };
}
