import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { NLM_F_MULTI } from '../../../src/netlink/enums.js';
import { formatIP } from '../../../src/netlink/ip.js';
import type { NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import * as R from '../../../src/netlink/rtnl/enums.js';
import {
  decodeLink,
  decodeLinkMessage,
  encodeLink,
  type LinkEntry,
  linkDumpRequest,
} from '../../../src/netlink/rtnl/link.js';
import { formatMac, parseMac } from '../../../src/netlink/rtnl/mac.js';
import {
  decodeNeigh,
  decodeNeighMessage,
  encodeNeigh,
  type NeighEntry,
  neighDumpRequest,
} from '../../../src/netlink/rtnl/neigh.js';
import { fixtureMessages, loadFixture } from '../../helpers/fixtures.js';

// Captured by test/fixtures/netlink/capture-neigh.ts: router bridge br0 with ports lan1, lan2.
const C1 = { mac: '02:00:00:00:77:11', v4: '192.168.77.11', v6: 'fd77::11', port: 'lan1' };
const C2 = { mac: '02:00:00:00:77:12', v4: '192.168.77.12', v6: 'fd77::12', port: 'lan2' };
const neighOf = (ms: NetlinkMessage[]) => ms.filter((m) => m.type === R.RTM_NEWNEIGH || m.type === R.RTM_DELNEIGH);
const dump = neighOf(fixtureMessages('neigh-dump'));
const fdb = neighOf(fixtureMessages('neigh-fdb'));
const links = fixtureMessages('neigh-links').filter((m) => m.type === R.RTM_NEWLINK);
const events = fixtureMessages('neigh-events');
const linkDump = links.map((m) => decodeLink(m.payload));
const index = (name: string) => linkDump.find((l) => l.name === name)!.index;

describe('rtnetlink neighbour golden bytes (captured from the real kernel)', () => {
  it('names the kernel and the command that captured them', () => {
    for (const name of ['neigh-dump', 'neigh-fdb', 'neigh-links', 'neigh-events']) {
      const f = loadFixture(name);
      expect(f.command).toMatch(/capture-neigh\.js/);
      expect(f.kernel).toMatch(/^\d+\.\d+/);
    }
  });

  it('decodes the link dump: names, bridge kind, ports enslaved to br0, MACs', () => {
    expect(linkDump.map((l) => l.name)).toEqual(['lo', 'br0', 'lan1', 'lan2']);
    const br0 = linkDump[1];
    expect(br0).toMatchObject({ family: 0, type: R.ARPHRD_ETHER, mac: '02:00:00:00:77:01', mtu: 1500 });
    expect(br0.linkInfo?.kind).toBe('bridge');
    expect(br0.flags & R.IFF_UP).toBe(R.IFF_UP);
    for (const port of ['lan1', 'lan2']) {
      const l = linkDump.find((x) => x.name === port)!;
      expect(l).toMatchObject({ master: br0.index, linkInfo: { kind: 'veth', slaveKind: 'bridge' } });
    }
    expect(linkDump[0]).toMatchObject({ name: 'lo', type: R.ARPHRD_LOOPBACK, mac: '00:00:00:00:00:00' });
    expect(linkDump[0].master).toBeUndefined();
  });

  it('decodes an AF_UNSPEC dump: both clients over IPv4 and IPv6 on br0, multicast entries NOARP', () => {
    const entries = dump.map((m) => {
      expect(m.flags & NLM_F_MULTI).toBe(NLM_F_MULTI);
      return decodeNeighMessage(m);
    });
    expect(new Set(entries.map((e) => e.entry.family))).toEqual(new Set([2, 10]));
    const unicast = entries.map((e) => e.entry).filter((e) => e.type === R.RTN_UNICAST);
    expect(unicast.map((e) => [e.dst, e.lladdr, e.ifindex]).sort()).toEqual(
      [
        [C1.v4, C1.mac, index('br0')],
        [C2.v4, C2.mac, index('br0')],
        [C1.v6, C1.mac, index('br0')],
        [C2.v6, C2.mac, index('br0')],
      ].sort(),
    );
    for (const e of unicast) {
      expect(e.state & (R.NUD_REACHABLE | R.NUD_STALE | R.NUD_DELAY | R.NUD_PROBE)).not.toBe(0);
      expect(e.cacheinfo?.refcnt).toBeGreaterThanOrEqual(0);
      expect(e.probes).toBeDefined();
    }
    const multicast = entries.map((e) => e.entry).filter((e) => e.type === R.RTN_MULTICAST);
    expect(multicast.length).toBeGreaterThan(0);
    for (const e of multicast) {
      expect(e.state).toBe(R.NUD_NOARP);
      expect(e.dst).toMatch(/^(ff02::|224\.)/);
    }
  });

  it('decodes the AF_BRIDGE dump: each client MAC learned on its port, the bridge addresses PERMANENT', () => {
    const entries = fdb.map((m) => decodeNeigh(m.payload));
    expect(entries.every((e) => e.family === 7 && e.dst === undefined)).toBe(true);
    const learned = entries.filter((e) => e.master !== undefined && !(e.state & R.NUD_PERMANENT));
    expect(learned.map((e) => [e.lladdr, e.ifindex, e.master, e.state])).toEqual([
      [C1.mac, index(C1.port), index('br0'), R.NUD_REACHABLE],
      [C2.mac, index(C2.port), index('br0'), R.NUD_REACHABLE],
    ]);
    const own = entries.find((e) => e.lladdr === '02:00:00:00:77:01')!;
    expect(own).toMatchObject({ ifindex: index('br0'), master: index('br0'), state: R.NUD_PERMANENT });
    const self = entries.filter((e) => e.flags & R.NTF_SELF);
    expect(self.length).toBeGreaterThan(0);
    expect(self.every((e) => e.state === R.NUD_PERMANENT && e.master === undefined)).toBe(true);
  });

  it('decodes the events: FDB learning, ip neigh del as NEW FAILED + DEL, unanswered ARP as one FAILED', () => {
    const neigh = neighOf(events).map((m) => ({ ...decodeNeighMessage(m), groups: m.type }));
    const fdbLearned = neigh.filter((x) => x.entry.family === 7 && x.entry.state === R.NUD_REACHABLE);
    expect(fdbLearned.map((x) => [x.kind, x.entry.lladdr, x.entry.ifindex])).toContainEqual([
      'new',
      C2.mac,
      index(C2.port),
    ]);
    const c1 = neigh.filter((x) => x.entry.dst === C1.v4);
    expect(c1.slice(-2).map((x) => [x.kind, x.entry.state, x.entry.lladdr])).toEqual([
      ['new', R.NUD_FAILED, undefined],
      ['delete', R.NUD_FAILED, undefined],
    ]);
    const absent = neigh.filter((x) => x.entry.dst === '192.168.77.99');
    expect(absent.map((x) => [x.kind, x.entry.state])).toEqual([['new', R.NUD_FAILED]]);
    // INCOMPLETE is never notified; state changes come as NEW, only deletions as DEL.
    expect(neigh.some((x) => x.entry.state === R.NUD_INCOMPLETE)).toBe(false);
    expect(neigh.filter((x) => x.kind === 'delete').map((x) => x.entry.dst)).toEqual([C1.v4]);
    const states = new Set(neigh.filter((x) => x.entry.dst === C2.v4).map((x) => x.entry.state));
    expect(states.has(R.NUD_STALE) && states.has(R.NUD_REACHABLE)).toBe(true);
  });

  it('decodes link events: lan2 appearing and joining br0, plus the bridge-port (AF_BRIDGE) notifications', () => {
    const ls = events.filter((m) => m.type === R.RTM_NEWLINK).map((m) => decodeLinkMessage(m).entry);
    expect(ls.length).toBeGreaterThan(0);
    expect(ls.every((l) => l.name === 'lan2' && l.index === index('lan2'))).toBe(true);
    expect(ls.some((l) => l.family === 0 && l.master === undefined)).toBe(true);
    expect(ls.some((l) => l.family === 0 && l.master === index('br0'))).toBe(true);
    expect(ls.some((l) => l.family === 7 && l.master === index('br0'))).toBe(true);
  });

  it('re-encodes every neighbour and FDB message to the very same bytes', () => {
    for (const m of [...dump, ...fdb, ...neighOf(events)]) {
      expect(encodeNeigh(decodeNeigh(m.payload)).toString('hex')).toBe(m.payload.toString('hex'));
    }
  });

  it('round-trips link messages: every value and every kept attribute survives encode and decode', () => {
    for (const m of [...links, ...events.filter((x) => x.type === R.RTM_NEWLINK)]) {
      const l = decodeLink(m.payload);
      expect(decodeLink(encodeLink(l))).toEqual(l);
    }
  });

  it('builds dump requests with the family in ndmsg / ifinfomsg', () => {
    const n = neighDumpRequest(7);
    expect(n.type).toBe(R.RTM_GETNEIGH);
    expect(n.payload.toString('hex')).toBe('070000000000000000000000');
    const l = linkDumpRequest();
    expect(l.type).toBe(R.RTM_GETLINK);
    expect(l.payload).toEqual(Buffer.alloc(16));
  });
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const macText = bytes(0, 32).map((b) => formatMac(b, 0, b.length));
const unknownNeighAttr = fc.record({
  type: fc.constantFrom(6, 7, 8, 10, 11, 13, 14, 16, 17, 200),
  nested: fc.boolean(),
  value: bytes(0, 20),
});

const neighEntry = fc.constantFrom(2, 10, 7).chain((family) =>
  fc.record(
    {
      family: fc.constant(family),
      ifindex: fc.integer({ min: 0, max: 0x7fffffff }),
      state: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.integer({ min: 0, max: 255 }),
      type: fc.integer({ min: 0, max: 255 }),
      dst: bytes(family === 10 ? 16 : 4, family === 10 ? 16 : 4).map((b) => formatIP(b, 0, b.length)),
      lladdr: macText,
      cacheinfo: fc.record({ confirmed: u32, used: u32, updated: u32, refcnt: u32 }),
      probes: u32,
      vlan: fc.integer({ min: 0, max: 0xffff }),
      master: u32,
      protocol: fc.integer({ min: 0, max: 255 }),
      flagsExt: u32,
      unknown: fc.array(unknownNeighAttr, { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: ['family', 'ifindex', 'state', 'flags', 'type'] },
  ),
);

const linkEntry = fc.record(
  {
    family: fc.constantFrom(0, 7),
    type: fc.integer({ min: 0, max: 0xffff }),
    index: fc.integer({ min: 0, max: 0x7fffffff }),
    flags: u32,
    change: u32,
    name: fc.stringMatching(/^[a-z][a-z0-9.-]{0,14}$/),
    mac: macText,
    broadcast: macText,
    mtu: u32,
    master: u32,
    operstate: fc.integer({ min: 0, max: 255 }),
    linkInfo: fc.record(
      {
        kind: fc.stringMatching(/^[a-z]{1,10}$/),
        slaveKind: fc.stringMatching(/^[a-z]{1,10}$/),
        unknown: fc.array(fc.record({ type: fc.constantFrom(2, 3, 5), nested: fc.boolean(), value: bytes(0, 8) }), {
          minLength: 1,
        }),
      },
      { requiredKeys: [] },
    ),
    unknown: fc.array(fc.record({ type: fc.constantFrom(13, 23, 26, 50), nested: fc.boolean(), value: bytes(0, 8) }), {
      minLength: 1,
    }),
  },
  { requiredKeys: ['family', 'type', 'index', 'flags', 'change'] },
);

const isDecodeError = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
  }
};

describe('rtnetlink codec properties', () => {
  it('decode ∘ encode is the identity on neighbour entries', () => {
    fc.assert(
      fc.property(neighEntry, (e) => {
        expect(decodeNeigh(encodeNeigh(e as NeighEntry))).toEqual(e);
      }),
      { numRuns: 500 },
    );
  });

  it('decode ∘ encode is the identity on link entries', () => {
    fc.assert(
      fc.property(linkEntry, (e) => {
        expect(decodeLink(encodeLink(e as LinkEntry))).toEqual(e);
      }),
      { numRuns: 500 },
    );
  });

  it('MAC text ⇄ bytes', () => {
    fc.assert(
      fc.property(bytes(0, 32), (b) => {
        expect(parseMac(formatMac(b, 0, b.length))).toEqual(b);
      }),
    );
    expect(() => parseMac('02:00:0')).toThrow(/not a link-layer address/);
  });

  it('truncated golden messages give DecodeError or a valid prefix, never another throw', () => {
    for (const m of [...dump, ...fdb, ...neighOf(events)]) {
      for (let cut = 0; cut < m.payload.length; cut++) isDecodeError(() => decodeNeigh(m.payload.subarray(0, cut)));
    }
    for (const m of links) {
      for (let cut = 0; cut < m.payload.length; cut += 3) isDecodeError(() => decodeLink(m.payload.subarray(0, cut)));
    }
    expect(() => decodeNeigh(Buffer.alloc(11))).toThrow(DecodeError);
    expect(() => decodeLink(Buffer.alloc(15))).toThrow(DecodeError);
  });

  it('random payloads and byte flips give DecodeError, never another throw or a hang', () => {
    const flip = (base: Buffer) =>
      fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
        const b = Buffer.from(base);
        b[i] = v;
        return b;
      });
    fc.assert(
      fc.property(fc.oneof(bytes(0, 200), flip(dump[0].payload), flip(fdb.at(-1)!.payload)), (p) => {
        isDecodeError(() => decodeNeigh(p));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.oneof(bytes(0, 200), flip(links[1].payload)), (p) => {
        isDecodeError(() => decodeLink(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects messages of other types', () => {
    const m = { ...dump[0], type: R.RTM_NEWLINK };
    expect(() => decodeNeighMessage(m)).toThrow(DecodeError);
    expect(() => decodeLinkMessage({ ...links[0], type: R.RTM_NEWNEIGH })).toThrow(DecodeError);
  });
});
