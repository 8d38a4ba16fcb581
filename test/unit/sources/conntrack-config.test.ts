/**
 * The CLI's zod-free config (config.ts) against the schema (options.ts): when
 * the plain check accepts options it gives what the schema gives, and it
 * accepts nothing the schema refuses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONNTRACK_DEFAULTS } from '../../../src/sources/conntrack/config.js';
import { type ConntrackOptionsInput, parseConntrackOptions } from '../../../src/sources/conntrack/options.js';
import { plainConntrackConfig } from '../../../src/sources/conntrack/plain-config.js';

/** Each option: valid values, edge values on both sides of its bounds, and the wrong types. */
const edgeInts = (min: number, max: number) =>
  fc.oneof(
    fc.constantFrom(min - 1, min, min + 1, max - 1, max, max + 1, 1.5, -0, Number.NaN, Number.POSITIVE_INFINITY),
    fc.integer({ min, max: Math.min(max, 2 ** 31) }),
  );
const wrong = fc.constantFrom<unknown>('1', null, {}, [], true, 0, 'all');
const value: Record<string, fc.Arbitrary<unknown>> = {
  dump: fc.oneof(fc.boolean(), wrong),
  events: fc.oneof(
    fc.subarray(['new', 'update', 'destroy', 'bogus']),
    fc.array(fc.constantFrom('new', 'update', 'destroy')),
    wrong,
  ),
  family: fc.oneof(fc.constantFrom('ipv4', 'ipv6', 'all', 'inet', ''), wrong),
  zone: fc.oneof(edgeInts(0, 65535), wrong),
  mark: fc.oneof(edgeInts(0, 0xffffffff), wrong),
  markMask: fc.oneof(edgeInts(0, 0xffffffff), wrong),
  netns: fc.oneof(fc.constantFrom('ns1', 'a.b-c_d', '', 'a b', 'x/y', '../x'), fc.string(), wrong),
  pollIntervalMs: fc.oneof(edgeInts(0, Number.MAX_SAFE_INTEGER), wrong),
  recvBufferBytes: fc.oneof(edgeInts(4096, Number.MAX_SAFE_INTEGER), wrong),
  lossCheckMs: fc.oneof(edgeInts(10, Number.MAX_SAFE_INTEGER), wrong),
  setEventsSysctl: fc.oneof(fc.boolean(), wrong),
  setAccounting: fc.oneof(fc.boolean(), wrong),
  reliable: fc.oneof(fc.boolean(), wrong),
  batchedReceive: fc.oneof(fc.boolean(), wrong),
  bogus: fc.constant(1),
  notices: fc.constant({ next: () => {} }),
};
const options = fc.record(
  Object.fromEntries(Object.entries(value).map(([k, a]) => [k, fc.option(a, { nil: undefined })])),
  { requiredKeys: [] },
) as fc.Arbitrary<ConntrackOptionsInput>;

function schema(o: ConntrackOptionsInput): { ok: true; cfg: unknown } | { ok: false } {
  try {
    return { ok: true, cfg: parseConntrackOptions(o) };
  } catch {
    return { ok: false };
  }
}

describe('plainConntrackConfig', () => {
  it('accepts only what the schema accepts, and gives the same config', () => {
    fc.assert(
      fc.property(options, (o) => {
        const plain = plainConntrackConfig(o);
        const s = schema(o);
        if (plain === undefined) return;
        expect(s.ok).toBe(true);
        if (s.ok) expect(plain).toEqual(s.cfg);
      }),
      // Found by a CI run: a poll past the longest timer wait, which the schema refuses (596h).
      { numRuns: 3000, examples: [[{ pollIntervalMs: Number.MAX_SAFE_INTEGER }]] },
    );
  });

  it('accepts every valid option set, as the schema does', () => {
    const valid = fc.record(
      {
        dump: fc.boolean(),
        events: fc.subarray(['new', 'update', 'destroy'] as const),
        family: fc.constantFrom('ipv4', 'ipv6', 'all' as const),
        zone: fc.integer({ min: 0, max: 65535 }),
        mark: fc.integer({ min: 0, max: 0xffffffff }),
        markMask: fc.integer({ min: 0, max: 0xffffffff }),
        netns: fc.stringMatching(/^[A-Za-z0-9_.-]+$/),
        pollIntervalMs: fc.nat(),
        recvBufferBytes: fc.integer({ min: 4096 }),
        lossCheckMs: fc.integer({ min: 10 }),
        reliable: fc.boolean(),
        batchedReceive: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(valid, (o) => {
        expect(plainConntrackConfig(o)).toEqual(parseConntrackOptions(o));
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts the options the CLI passes, with the schema’s defaults', () => {
    const o: ConntrackOptionsInput = {
      dump: true,
      events: [],
      family: 'all',
      zone: undefined,
      mark: undefined,
      netns: 'fg-test',
      pollIntervalMs: 0,
      setEventsSysctl: false,
      setAccounting: false,
      reliable: false,
      notices: { next: () => {} },
    };
    expect(plainConntrackConfig(o)).toEqual(parseConntrackOptions(o));
    expect(plainConntrackConfig({})).toEqual(parseConntrackOptions({}));
    expect(plainConntrackConfig({ pollIntervalMs: 500 })?.events).toEqual([]);
    expect(parseConntrackOptions({})).toMatchObject(CONNTRACK_DEFAULTS);
  });

  it('refuses what the schema refuses, so the schema can say why', () => {
    for (const bad of [{ zone: 70000 }, { bogus: 1 }, { netns: 'a/b' }, { events: ['nope'] }, { family: 'inet' }]) {
      expect(plainConntrackConfig(bad as ConntrackOptionsInput)).toBeUndefined();
      expect(() => parseConntrackOptions(bad as ConntrackOptionsInput)).toThrow(/conntrack options/);
    }
  });
});
