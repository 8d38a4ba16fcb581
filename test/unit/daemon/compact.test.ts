import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../../src/daemon/client.js';
import {
  COMPACT_MAX_DEPTH,
  COMPACT_VERSION,
  compactFrame,
  decodeCompact,
  encodeCompact,
} from '../../../src/daemon/compact.js';
import { encodeFrame, FrameReader, PROTOCOL_VERSION, parseServerFrame, Request } from '../../../src/daemon/protocol.js';
import { FlowgrabError } from '../../../src/errors.js';

/** What JSON makes of the records: the compact form must give exactly this. */
const viaJson = (recs: unknown[]) => JSON.parse(JSON.stringify(recs)) as unknown[];
const roundTrip = (recs: unknown[]) => decodeCompact(encodeCompact(recs) as Buffer, 0);
const protocolError = (what: RegExp) =>
  expect.objectContaining({ name: 'FlowgrabError', code: 'FG_ERR_PROTOCOL', message: expect.stringMatching(what) });

const ct = (i: number) => ({
  type: 'new',
  id: 1000 + i,
  family: 'ipv4',
  proto: 'udp',
  orig: { src: '10.0.0.1', dst: `127.10.0.${i + 1}`, sport: 40000 + i, dport: 9, packets: 1, bytes: 29 },
  reply: { src: `127.10.0.${i + 1}`, dst: '10.0.0.1', sport: 9, dport: 40000 + i, packets: 0, bytes: 0 },
  state: undefined,
  status: ['CONFIRMED'],
  mark: 0,
  timeout: 30.5,
  ts: 1_764_700_000_000 + i,
});

describe('compact records frames: the same records JSON gives', () => {
  it('round-trips conntrack-shaped records, smaller than their JSON', () => {
    const recs = Array.from({ length: 50 }, (_, i) => ct(i));
    expect(roundTrip(recs)).toEqual(viaJson(recs));
    expect((encodeCompact(recs) as Buffer).length * 3).toBeLessThan(Buffer.byteLength(JSON.stringify(recs)));
  });

  it('any value (JSON or not, lone surrogates, -0, NaN, toJSON, sparse arrays) decodes as JSON.parse(JSON.stringify)', () => {
    const value = fc.anything({
      stringUnit: 'binary',
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
      maxDepth: 6,
    });
    fc.assert(
      fc.property(fc.array(value, { maxLength: 8 }), (recs) => {
        expect(roundTrip(recs)).toEqual(viaJson(recs));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps `__proto__` an own property, as JSON.parse does, and never a prototype', () => {
    const rec = JSON.parse('{"__proto__":{"polluted":1},"a":1}');
    const [got] = roundTrip([rec]) as Record<string, unknown>[];
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(got)).toBe(JSON.stringify(rec));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses (undefined: the batch goes as JSON) what JSON says differently: bigints, cycles, nesting too deep', () => {
    expect(encodeCompact([{ a: 1n }])).toBeUndefined();
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(encodeCompact([cyc])).toBeUndefined();
    let deep: unknown = 1;
    for (let i = 0; i <= COMPACT_MAX_DEPTH; i++) deep = [deep];
    expect(encodeCompact([deep])).toBeUndefined();
  });
});

describe('compact records frames: malformed ones are protocol errors that say why', () => {
  const batch = encodeCompact(Array.from({ length: 5 }, (_, i) => ct(i))) as Buffer;

  it('a cut, changed or random batch decodes or throws FG_ERR_PROTOCOL, nothing else', () => {
    fc.assert(
      fc.property(
        fc.nat(batch.length - 1),
        fc.nat(batch.length - 1),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 200 }),
        (cut, at, v, rnd) => {
          const flipped = Buffer.from(batch);
          flipped[at] = v;
          expect(() => decodeCompact(batch.subarray(0, cut), 0)).toThrow(FlowgrabError); // short: always an error
          for (const b of [flipped, Buffer.from(rnd)]) {
            try {
              decodeCompact(b, 0);
            } catch (err) {
              expect(err).toEqual(protocolError(/malformed compact records frame/));
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('names the fault: counts past the end, bad indexes, unknown tags, nesting, leftovers, version, kind', () => {
    const cases: [number[], RegExp][] = [
      [[200, 1, 0], /200 strings, more than the 1 bytes left/],
      [[0, 0, 1, 8, 5], /shape 5 of 0/],
      [[0, 0, 1, 6, 0], /string 0 of 0/],
      [[0, 0, 1, 42], /unknown tag 42/],
      [[0, 0, 1, 0, 0], /1 bytes left over/],
      [[0, 0, 1, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1], /more than 8 bytes/],
      [[0, 0, 1, ...new Array(COMPACT_MAX_DEPTH + 1).fill(0).flatMap(() => [7, 1]), 0], /nesting deeper than 64/],
      [[1, 4, 0x61], /a string of 2 bytes past the end/],
      [[1, 3, 0x61, 0, 0], /a JSON string that is not one/],
    ];
    for (const [bytes, why] of cases)
      expect(() => decodeCompact(Buffer.from(bytes), 0), String(bytes)).toThrow(protocolError(why) as unknown as Error);
    const frame = compactFrame(3, '', batch).subarray(4);
    const other = Buffer.from(frame);
    other[1] = COMPACT_VERSION + 1;
    expect(() => parseServerFrame(other, true)).toThrow(
      protocolError(/compact frames of version 2; this client reads version 1/) as unknown as Error,
    );
    other[1] = COMPACT_VERSION;
    other[2] = 9;
    expect(() => parseServerFrame(other, true)).toThrow(protocolError(/unknown kind 9/) as unknown as Error);
    expect(() => parseServerFrame(frame.subarray(0, 6), true)).toThrow(
      protocolError(/shorter than its head/) as unknown as Error,
    );
  });

  it('is an event only where the client asked for it; with node counts checked like JSON ones', () => {
    const recs = [ct(1), ct(2)];
    const nodes = [{ node: 'conntrack', path: 'conntrack', in: 2, out: 2, dropped: 0 }];
    const frame = compactFrame(7, JSON.stringify(nodes), encodeCompact(recs) as Buffer).subarray(4);
    expect(() => parseServerFrame(frame)).toThrow(
      protocolError(/compact records frame, which this connection did not ask for/) as unknown as Error,
    );
    expect(parseServerFrame(frame, true).event).toEqual({
      v: PROTOCOL_VERSION,
      ev: 'records',
      flow: 7,
      records: viaJson(recs),
      nodes,
    });
    const badNodes = compactFrame(7, '[{"node":1}]', encodeCompact(recs) as Buffer).subarray(4);
    expect(() => parseServerFrame(badNodes, true)).toThrow(
      protocolError(/malformed event: nodes: /) as unknown as Error,
    );
  });
});

describe('compact records frames: negotiated in the hello', () => {
  let dir: string | undefined;
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A fake flowgrabd whose hello is as strict as `Request`, or as a daemon from before compact frames. */
  async function fakeDaemon(old: boolean): Promise<{ path: string; hellos: unknown[] }> {
    dir = mkdtempSync(join(tmpdir(), 'fg-compact-'));
    const path = join(dir, 'd.sock');
    const hellos: unknown[] = [];
    server = createServer((sock) => {
      const reader = new FrameReader();
      let compact = false;
      sock.on('data', (d) => {
        for (const f of reader.push(d)) {
          const req = JSON.parse(f.toString('utf8'));
          const reply = (extra: Record<string, unknown>) =>
            sock.write(encodeFrame({ v: PROTOCOL_VERSION, id: req.id, ok: true, ...extra }));
          if (req.op === 'hello') {
            hellos.push(req);
            if (old && 'records' in req) {
              // What a daemon before compact frames answered: its strict schema refuses the key.
              sock.write(
                encodeFrame({
                  v: PROTOCOL_VERSION,
                  id: req.id,
                  ok: false,
                  error: { code: 'FG_ERR_PROTOCOL', message: 'frame: Unrecognized key: "records"' },
                }),
              );
              continue;
            }
            expect(Request.safeParse(req).success).toBe(true);
            compact = req.records === 'compact';
            reply({ identity: { uid: 0, gid: 0 }, records: compact ? 'compact' : 'json' });
          } else if (req.op === 'create') reply({ flow: 4 });
          else if (req.op === 'activate') {
            reply({ state: 'active' });
            const recs = [ct(1), ct(2)];
            sock.write(
              compact
                ? compactFrame(4, '', encodeCompact(recs) as Buffer)
                : encodeFrame({ v: PROTOCOL_VERSION, ev: 'records', flow: 4, records: recs }),
            );
          } else reply({});
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server?.listen(path, r));
    return { path, hellos };
  }

  for (const old of [false, true])
    it(`connect() ${old ? 'falls back to JSON records with a daemon from before compact frames' : 'asks for compact records and gets them'}`, async () => {
      const { path, hellos } = await fakeDaemon(old);
      const c = await connect(path);
      const f = c.create().populate('replay(file=x)');
      await f.instantiate();
      const got: unknown[] = [];
      const two = new Promise<void>((resolve, reject) =>
        f.records$.subscribe({
          next: (r) => {
            got.push(r);
            if (got.length === 2) resolve();
          },
          error: reject,
        }),
      );
      await f.activate();
      await two;
      expect(got).toEqual(viaJson([ct(1), ct(2)]));
      expect(hellos).toEqual(
        old
          ? [
              expect.objectContaining({ records: 'compact' }),
              expect.not.objectContaining({ records: expect.anything() }),
            ]
          : [expect.objectContaining({ records: 'compact' })],
      );
      await c.close();
    });
});
