import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { authorize } from '../../../src/auth/authorize.js';
import { parsePolicy } from '../../../src/auth/load.js';
import { markInside, markRefusal, parseMark as parseMarkRange } from '../../../src/auth/marks.js';
import { FrameReader } from '../../../src/daemon/protocol.js';
import { redactPacket } from '../../../src/daemon/registration.js';
import { checkSocketDir, clearStaleSocket } from '../../../src/daemon/socket.js';
import { parseGraph as parse } from '../../../src/filters/parser.js';
import { boundedLines } from '../../../src/filters/replay.js';
import { nestedPast } from '../../../src/util/json-depth.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fg-hostile-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of it) out.push(l);
  return out;
}

/** How deep objects and arrays nest in a JSON value (a scalar: 0). */
const depthOf = (v: unknown): number =>
  typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0;

describe('replayed records nested too deep', () => {
  it('nestedPast agrees with the parsed depth, whatever the strings hold (brackets, quotes, escapes)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 }), (v, max) => {
        const text = JSON.stringify(v);
        expect(nestedPast(text, max)).toBe(depthOf(v) > max);
      }),
    );
    expect(nestedPast(JSON.stringify({ a: '[[[[{{{{\\"[[' }), 1)).toBe(false);
    expect(nestedPast(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, 32)).toBe(true);
  });
});

describe('mark ranges', () => {
  it('a registration lies inside a range exactly when every mark it matches is in the range', () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, u32, (m1, k1, m2, k2, probe) => {
        const inner = { mark: (m1 & k1) >>> 0, mask: k1 >>> 0 };
        const outer = { mark: (m2 & k2) >>> 0, mask: k2 >>> 0 };
        const matches = (r: { mark: number; mask: number }, p: number) => (p & r.mask) >>> 0 === r.mark;
        // A probe matching inner but not outer disproves containment.
        if (matches(inner, probe) && !matches(outer, probe)) expect(markInside(inner, outer)).toBe(false);
        // Inner's bits where it cares, the opposite of outer's elsewhere: in inner, and in outer only if contained.
        const witness = ((inner.mark & inner.mask) | (~outer.mark & ~inner.mask)) >>> 0;
        expect(markInside(inner, outer)).toBe(matches(outer, witness));
      }),
    );
  });

  it('parses ranges and refuses claims outside them, and 0x0/0x0 unless granted', () => {
    expect(parseMarkRange('0x10/0xf0')).toEqual({ mark: 0x10, mask: 0xf0 });
    expect(parseMarkRange('16')).toEqual({ mark: 16, mask: 0xffffffff });
    for (const bad of ['', 'x', '0x1/0x2/0x3', '0x100000000', '-1']) expect(parseMarkRange(bad), bad).toBeUndefined();
    const P = (x: { marks?: string[] }) =>
      parsePolicy(JSON.stringify({ version: 1, principals: [{ who: { uid: 1000 }, ...x }] })).principals[0];
    const p = { marks: ['0x10/0xf0'] };
    expect(markRefusal(P(p), { mark: 0x10, mask: 0xff }, 1000)).toBeUndefined();
    expect(markRefusal(P(p), { mark: 0x10, mask: 0xf0 }, 1000)).toBeUndefined();
    expect(markRefusal(P(p), { mark: 0x20, mask: 0xff }, 1000)).toMatch(/outside your mark ranges \(0x10\/0xf0\)/);
    expect(markRefusal(P(p), { mark: 0x10, mask: 0x70 }, 1000)).toMatch(/outside/);
    expect(markRefusal(P(p), { mark: 0, mask: 0 }, 1000)).toMatch(/outside/);
    expect(markRefusal(P({}), { mark: 0, mask: 0 }, 1000)).toMatch(/claims every packet/);
    expect(markRefusal(P({ marks: ['0x0/0x0'] }), { mark: 0, mask: 0 }, 1000)).toBeUndefined();
    expect(markRefusal(P({}), { mark: 0, mask: 0 }, 0)).toBeUndefined();
  });
});

describe('queued packets and redaction', () => {
  it('removes redacted paths without touching the packet the kernel gave', () => {
    const frame = { packetId: 1, ip: { src: '10.0.0.1', dst: '10.0.0.2' }, payload: 'abcd' };
    const out = redactPacket(frame, ['ip.src', 'payload', 'tcp.sport']);
    expect(out).toEqual({ packetId: 1, ip: { dst: '10.0.0.2' } });
    expect(frame.ip.src).toBe('10.0.0.1');
  });
});

describe('reserved queue', () => {
  it("flags nfqueue() on the daemon's queue anywhere in the graph, by parameter or position, for root too", () => {
    const root = { uid: 0, gid: 0, user: 'root', groups: [] };
    const policy = parsePolicy(
      JSON.stringify({ version: 1, principals: [{ who: { uid: 0 }, sources: ['*'], filters: ['*'] }] }),
    );
    const reserved = (text: string, queues: number[]) =>
      authorize(parse(text), root, policy, { reservedQueues: queues }).issues.filter(
        (i) => i.code === 'queue_reserved',
      );
    const g = 'conntrack() | (nfqueue(queue=5) | nfqueue(7)) | nfqueue(5, verdict=drop)';
    const issues = reserved(g, [5]);
    expect(issues).toHaveLength(2);
    expect(issues[0].message).toMatch(/queue 5 is the daemon's own shared queue/);
    expect(reserved(g, [])).toEqual([]);
    expect(reserved('nfqueue(queue=7)', [5])).toEqual([]);
  });
});

describe('replay lines', () => {
  it('splits lines across chunks and refuses a line over the bound instead of growing', async () => {
    const chunks = [Buffer.from('{"a":1}\n{"b"'), Buffer.from(':2}\r\n\n{"c":3}')];
    expect(await collect(boundedLines(Readable.from(chunks), 100, 'f'))).toEqual(['{"a":1}', '{"b":2}', '', '{"c":3}']);
    // An endless stream with no newline: stopped once the bound is passed, not at the end of the stream.
    let sent = 0;
    const zeros = new Readable({
      read() {
        sent += 4096;
        this.push(Buffer.alloc(4096));
      },
    });
    await expect(collect(boundedLines(zeros, 64 * 1024, '/dev/zero'))).rejects.toThrow(
      /\/dev\/zero: a line is longer than 65536 bytes/,
    );
    expect(sent).toBeLessThan(64 * 1024 + 3 * 4096 * 16);
  });
});

describe('the socket', () => {
  it('refuses a directory other users can write, a symlinked one, one below a directory others can write', async () => {
    const open = tmp();
    await chmod(open, 0o777);
    expect(() => checkSocketDir(join(open, 's.sock'))).toThrow(/others may write in it \(mode 0777\)/);
    const real = tmp();
    const link = join(tmp(), 'link');
    symlinkSync(real, link);
    expect(() => checkSocketDir(join(link, 's.sock'))).toThrow(/not a directory \(a symlink\?\)/);
    // A safe directory below one others may write (not sticky): they could rename it and put a symlink there.
    await mkdir(join(open, 'sub'), { mode: 0o755 });
    expect(() => checkSocketDir(join(open, 'sub', 's.sock'))).toThrow(
      new RegExp(`others may write in ${open} above it \\(mode 0777\\)`),
    );
    // Below a sticky one (as /tmp): nobody else may rename what this user made there.
    await chmod(open, 0o1777);
    expect(() => checkSocketDir(join(open, 'sub', 's.sock'))).not.toThrow();
    const fine = join(tmp(), 'new');
    await mkdir(fine, { mode: 0o755 });
    expect(() => checkSocketDir(join(fine, 's.sock'))).not.toThrow();
  });

  it('makes nothing on the way to a directory it refuses: not through a symlink, not under a directory others may write', async () => {
    const target = tmp();
    const link = join(tmp(), 'link');
    symlinkSync(target, link);
    expect(() => checkSocketDir(join(link, 'made', 'here', 's.sock'))).toThrow(/link above it is not a directory/);
    expect(existsSync(join(target, 'made'))).toBe(false);
    const open = tmp();
    await chmod(open, 0o777);
    expect(() => checkSocketDir(join(open, 'made', 's.sock'))).toThrow(/others may write in .* above it/);
    expect(existsSync(join(open, 'made'))).toBe(false);
    // A path that is fine is made, each directory as it is reached.
    const fine = join(tmp(), 'a', 'b');
    expect(() => checkSocketDir(join(fine, 's.sock'))).not.toThrow();
    expect(existsSync(fine)).toBe(true);
  });

  it('refuses to replace a live socket or a non-socket; removes a dead one', async () => {
    const d = tmp();
    const path = join(d, 'live.sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(path, r));
    await expect(clearStaleSocket(path)).rejects.toThrow(/another flowgrabd answers at/);
    await new Promise<void>((r) => server.close(() => r()));
    const file = join(d, 'file');
    writeFileSync(file, 'x');
    await expect(clearStaleSocket(file)).rejects.toThrow(/is not a socket/);
    await expect(clearStaleSocket(join(d, 'absent.sock'))).resolves.toBeUndefined();
  });
});

describe('frames', () => {
  const frameOf = (body: string) => {
    const b = Buffer.from(body);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length);
    return Buffer.concat([h, b]);
  };

  it('splits a stream cut anywhere into the same frames, and refuses a length over the limit', () => {
    const stream = Buffer.concat(['{"a":1}', '', '{"b":"xyz"}'].map(frameOf));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 8 }), (cuts) => {
        const at = [0, ...[...new Set(cuts)].sort((a, b) => a - b), stream.length];
        const r = new FrameReader();
        const got: string[] = [];
        for (let i = 1; i < at.length; i++)
          for (const f of r.push(stream.subarray(at[i - 1], at[i]))) got.push(f.toString());
        expect(got).toEqual(['{"a":1}', '', '{"b":"xyz"}']);
        expect(r.held).toBe(0);
      }),
    );
    const r = new FrameReader(100);
    expect(r.push(Buffer.from([0, 0]))).toEqual([]);
    expect(r.held).toBe(2);
    expect(() => r.push(Buffer.from([0, 101]))).toThrow('frame of 101 bytes is over the 100-byte limit');
  });
});
