import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { NLM_F_REQUEST, NLMSG_ERROR } from '../../../src/netlink/enums.js';
import { decodeError, type NetlinkMessage, splitMessages } from '../../../src/netlink/nlmsg.js';
import * as U from '../../../src/netlink/sockdiag/enums.js';
import {
  decodeUnixDiag,
  decodeUnixDiagMessage,
  decodeUnixDiagReq,
  encodeUnixDiag,
  encodeUnixDiagReq,
  type UnixDiagEntry,
  unixDiagRequest,
  unixSocketName,
} from '../../../src/netlink/sockdiag/unix.js';
import { type Fixture, loadFixture } from '../../helpers/fixtures.js';

// Captured by test/fixtures/netlink/capture-unix-diag.ts (see there for the sockets it makes).
interface DiagFixture extends Fixture {
  path: string;
  abstract: string;
  inodes: Record<'listener' | 'abstract' | 'accepted' | 'gone' | 'pending' | 'client', number>;
  datagrams: { groups: number; hex: string; what: string; request: string }[];
}
const fx = loadFixture('unix-diag') as DiagFixture;
const reply = (what: string): NetlinkMessage => {
  const d = fx.datagrams.find((x) => x.what.startsWith(what));
  if (!d) throw new Error(`no capture "${what}"`);
  const [m] = splitMessages(Buffer.from(d.hex, 'hex'));
  return m;
};
const entry = (what: string) => decodeUnixDiagMessage(reply(what));
const replies = fx.datagrams.map((d) => splitMessages(Buffer.from(d.hex, 'hex'))[0]).filter((m) => m.type !== 2);

describe('unix_diag golden bytes (captured from the real kernel)', () => {
  it('names the kernel and the command that captured them', () => {
    expect(fx.command).toMatch(/capture-unix-diag\.js/);
    expect(fx.kernel).toMatch(/^\d+\.\d+/);
    expect(replies.length).toBe(7);
  });

  it('the accepted socket points at the client, whose owner is uid 65534 and who points back', () => {
    const me = entry('accepted: peer');
    expect(me).toMatchObject({
      family: U.AF_UNIX,
      type: U.SOCK_STREAM,
      state: U.TCP_ESTABLISHED,
      ino: fx.inodes.accepted,
      peer: fx.inodes.client,
      shutdown: 0,
    });
    expect(me.uid).toBeUndefined(); // not asked for
    expect(entry('client (uid 65534)')).toMatchObject({ ino: fx.inodes.client, peer: fx.inodes.accepted, uid: 65534 });
  });

  it('decodes every attribute of an accepted socket holding 5 unread bytes', () => {
    const e = entry('accepted: everything');
    expect(unixSocketName(e.name)).toBe(fx.path); // an accepted socket carries its listener's name
    expect(e.vfs?.ino).toBeGreaterThan(0);
    expect(e.rqlen).toEqual({ rqueue: 5, wqueue: 0 });
    expect(e.meminfo).toHaveLength(9);
    expect(e).toMatchObject({ peer: fx.inodes.client, uid: 0, shutdown: 0 });
    expect(e.unknown).toBeUndefined();
  });

  it('a listener lists its waiting connection in ICONS and reports queue length and backlog', () => {
    const e = entry('listener');
    expect(e).toMatchObject({ state: U.TCP_LISTEN, ino: fx.inodes.listener, icons: [fx.inodes.pending] });
    expect(e.rqlen).toEqual({ rqueue: 1, wqueue: 4 });
    expect(unixSocketName(e.name)).toBe(fx.path);
  });

  it('an abstract name starts with NUL, shown as @name', () => {
    const e = entry('abstract');
    expect(e.name?.[0]).toBe(0);
    expect(unixSocketName(e.name)).toBe(`@${fx.abstract}`);
    expect(e.peer).toBeUndefined();
  });

  it('after the client hung up the peer inode is 0 and both directions are shut', () => {
    expect(entry('accepted, client hung up')).toMatchObject({ ino: fx.inodes.gone, peer: 0, shutdown: 3, uid: 0 });
  });

  it('inode 0 is EINVAL and a missing inode ENOENT', () => {
    expect(reply('inode 0').type).toBe(NLMSG_ERROR);
    expect(decodeError(reply('inode 0')).errno).toBe(22);
    expect(decodeError(reply('missing inode')).errno).toBe(2);
  });

  it('re-encodes every reply byte for byte', () => {
    for (const m of replies) expect(encodeUnixDiag(decodeUnixDiag(m.payload)).equals(m.payload)).toBe(true);
  });

  it('builds the requests that were sent, and decodes them back', () => {
    for (const d of fx.datagrams) {
      const [req] = splitMessages(Buffer.from(d.request, 'hex'));
      expect(req.flags).toBe(NLM_F_REQUEST);
      const r = decodeUnixDiagReq(req.payload);
      expect(r.cookie).toEqual([U.SOCK_NOCOOKIE, U.SOCK_NOCOOKIE]);
      const built = unixDiagRequest(r.ino, r.show);
      expect(built.type).toBe(req.type);
      expect(built.payload.equals(req.payload)).toBe(true);
      expect(encodeUnixDiagReq(r).equals(req.payload)).toBe(true);
    }
  });

  it('refuses other message types and families', () => {
    const m = reply('accepted: peer');
    expect(() => decodeUnixDiagMessage({ ...m, type: 21 })).toThrow(DecodeError);
    const inet = Buffer.from(m.payload);
    inet[0] = 2;
    expect(() => decodeUnixDiagMessage({ ...m, payload: inet })).toThrow(/not AF_UNIX/);
    expect(() => decodeUnixDiagReq(inet.subarray(0, 24))).toThrow(/not AF_UNIX/);
  });
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const diagEntry: fc.Arbitrary<UnixDiagEntry> = fc.record(
  {
    family: fc.constant(U.AF_UNIX),
    type: fc.integer({ min: 0, max: 255 }),
    state: fc.integer({ min: 0, max: 255 }),
    ino: u32,
    cookie: fc.tuple(u32, u32),
    name: bytes(0, 108),
    vfs: fc.record({ ino: u32, dev: u32 }),
    peer: u32,
    icons: fc.array(u32, { maxLength: 8 }),
    rqlen: fc.record({ rqueue: u32, wqueue: u32 }),
    meminfo: fc.array(u32, { maxLength: 12 }),
    shutdown: fc.integer({ min: 0, max: 255 }),
    uid: u32,
    unknown: fc.array(
      fc.record({ type: fc.integer({ min: 8, max: 300 }), nested: fc.boolean(), value: bytes(0, 16) }),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
  },
  { requiredKeys: ['family', 'type', 'state', 'ino', 'cookie'] },
);

const onlyDecodeErrors = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
  }
};

describe('unix_diag codec properties', () => {
  it('decode(encode(entry)) is the entry', () => {
    fc.assert(
      fc.property(diagEntry, (e) => {
        expect(decodeUnixDiag(encodeUnixDiag(e))).toEqual(e);
      }),
    );
  });

  it('requests round-trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        u32,
        u32,
        u32,
        fc.tuple(u32, u32),
        (protocol, states, ino, show, c) => {
          const r = { protocol, states, ino, show, cookie: c };
          expect(decodeUnixDiagReq(encodeUnixDiagReq(r))).toEqual(r);
        },
      ),
    );
  });

  it('every truncation of a golden reply decodes or throws DecodeError, never anything else', () => {
    for (const m of replies)
      for (let n = 0; n < m.payload.length; n++) onlyDecodeErrors(() => decodeUnixDiag(m.payload.subarray(0, n)));
    expect(() => decodeUnixDiag(replies[0].payload.subarray(0, 15))).toThrow(DecodeError);
  });

  it('random bytes and corrupted golden replies only ever throw DecodeError', () => {
    fc.assert(
      fc.property(bytes(0, 200), (b) => onlyDecodeErrors(() => decodeUnixDiag(b))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.constantFrom(...replies), fc.nat(), fc.integer({ min: 0, max: 255 }), (m, at, v) => {
        const b = Buffer.from(m.payload);
        b[at % b.length] = v;
        onlyDecodeErrors(() => decodeUnixDiag(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('attributes too short for their type are DecodeErrors that say which', () => {
    const base = Buffer.from(reply('client (uid 65534)').payload);
    // The UID attribute is last: shrink its length field below 4 bytes of value.
    const uidAt = base.length - 8;
    expect(base.readUInt16LE(uidAt + 2)).toBe(U.UNIX_DIAG_UID);
    base.writeUInt16LE(6, uidAt);
    expect(() => decodeUnixDiag(base.subarray(0, uidAt + 6))).toThrow(/UNIX_DIAG_UID needs 4 bytes/);
  });
});
