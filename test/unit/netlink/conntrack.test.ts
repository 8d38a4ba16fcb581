import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { type CtEntry, decodeCtEntry, encodeCtEntry } from '../../../src/netlink/conntrack/entry.js';
import { decodeCtMessage, encodeCtMessage } from '../../../src/netlink/conntrack/messages.js';
import { NFGENMSG_LEN, NFNL_SUBSYS_CTNETLINK } from '../../../src/netlink/nfnetlink.js';
import { toConntrackRecord } from '../../../src/sources/conntrack/record.js';
import { fixtureMessages, loadFixture } from '../../helpers/fixtures.js';

const dump = fixtureMessages('conntrack-dump', NFNL_SUBSYS_CTNETLINK);
const events = fixtureMessages('conntrack-events', NFNL_SUBSYS_CTNETLINK);

describe('ctnetlink golden bytes (captured from the real kernel)', () => {
  it('names the kernel and the command that captured them', () => {
    const f = loadFixture('conntrack-dump');
    expect(f.command).toMatch(/capture\.js/);
    expect(f.kernel).toMatch(/^\d+\.\d+/);
  });

  it('decodes a dump of TCP, UDP, ICMP and ICMPv6 flows over IPv4 and IPv6', () => {
    const recs = dump.map((m) => {
      const { kind, entry } = decodeCtMessage(m);
      return toConntrackRecord(kind, entry, 0);
    });
    expect(recs.every((r) => r.type === 'dump')).toBe(true);
    const tcp4 = recs.find((r) => r.proto === 'tcp' && r.family === 'ipv4')!;
    expect(tcp4.orig).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', dport: 7000 });
    expect(tcp4.reply.sport).toBe(7000);
    expect(tcp4.state).toBe('TIME_WAIT');
    expect(tcp4.status).toEqual(expect.arrayContaining(['ASSURED', 'SEEN_REPLY']));
    expect(tcp4.orig.packets).toBeGreaterThan(2);
    expect(tcp4.start).toBeGreaterThan(1.7e12);
    const tcp6 = recs.find((r) => r.proto === 'tcp' && r.family === 'ipv6')!;
    expect(tcp6.orig.src).toBe('::1');
    const icmp = recs.find((r) => r.proto === 'icmp')!;
    expect(icmp.orig.icmp).toMatchObject({ type: 8, code: 0 });
    expect(icmp.reply.icmp).toMatchObject({ type: 0, code: 0, id: icmp.orig.icmp!.id });
    expect(icmp.orig.sport).toBeUndefined();
    const icmp6 = recs.find((r) => r.proto === 'icmpv6')!;
    expect(icmp6.orig.icmp?.type).toBe(128);
    const udp = recs.find((r) => r.proto === 'udp')!;
    expect(udp).toMatchObject({ protonum: 17, orig: { dst: '127.0.0.2', dport: 9, packets: 1 } });
    expect(udp.reply.packets).toBe(0);
  });

  it('re-encodes dump entries to the very same bytes', () => {
    for (const m of dump) {
      const entry = decodeCtEntry(m.payload, NFGENMSG_LEN, m.payload.length, m.payload[0]);
      expect(encodeCtEntry(entry).toBuffer().equals(m.payload.subarray(NFGENMSG_LEN))).toBe(true);
    }
  });

  it('classifies events: NEW with CREATE, UPDATE without flags, DESTROY as CT_DELETE with counters', () => {
    const kinds = events.map((m) => decodeCtMessage(m));
    const count = (k: string) => kinds.filter((x) => x.kind === k).length;
    expect(count('new')).toBe(5);
    expect(count('destroy')).toBe(5);
    expect(count('update')).toBeGreaterThan(5);
    for (const k of kinds) {
      if (k.kind === 'destroy') expect(k.entry.countersOrig?.packets).toBeGreaterThan(0);
      else expect(k.entry.countersOrig).toBeUndefined(); // NEW/UPDATE carry no counters (docs/kernel.md §2)
      expect(k.entry.timestampEvent).toBeDefined();
    }
    const tcpStates = kinds
      .filter((k) => k.entry.orig?.protonum === 6 && k.entry.family === 2)
      .map((k) => k.entry.tcp?.state);
    expect(tcpStates.slice(0, 3)).toEqual([1, 2, 3]); // SYN_SENT, SYN_RECV, ESTABLISHED
  });

  it('round-trips events through encode and decode', () => {
    for (const m of events) {
      const { kind, entry } = decodeCtMessage(m);
      const again = encodeCtMessage(kind, entry);
      const back = decodeCtMessage({ ...again, seq: 0, pid: 0 });
      expect(back).toEqual({ kind, entry });
    }
  });
});

const tuple = (v6: boolean) =>
  fc.record({
    src: v6 ? fc.ipV6() : fc.ipV4(),
    dst: v6 ? fc.ipV6() : fc.ipV4(),
    protonum: fc.constantFrom(6, 17),
    sport: fc.integer({ min: 0, max: 65535 }),
    dport: fc.integer({ min: 0, max: 65535 }),
  });
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 53n + 2n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
const counters = fc.record({ packets: u64, bytes: u64 });
const entry = fc.boolean().chain((v6) =>
  fc.record(
    {
      family: fc.constant(v6 ? 10 : 2),
      orig: tuple(v6),
      reply: tuple(v6),
      status: fc.integer({ min: 0, max: 0xffff }),
      mark: fc.integer({ min: 0, max: 0xffffffff }),
      id: fc.integer({ min: 0, max: 0xffffffff }),
      timeout: fc.nat(),
      countersOrig: counters,
      countersReply: counters,
      zone: fc.integer({ min: 0, max: 65535 }),
      timestampStart: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    },
    { requiredKeys: ['family', 'orig', 'reply'] },
  ),
);

describe('ctnetlink codec properties', () => {
  it('decode ∘ encode is the identity on entries', () => {
    fc.assert(
      fc.property(entry, (e) => {
        const bytes = encodeCtEntry(e as CtEntry).toBuffer();
        const back = decodeCtEntry(bytes, 0, bytes.length, e.family);
        const norm = (t: { src: string; dst: string }) => ({ ...t, src: canon(t.src), dst: canon(t.dst) });
        expect(back).toEqual({ ...e, orig: norm(e.orig), reply: norm(e.reply) });
      }),
    );
  });

  it('truncated golden messages give DecodeError or a valid prefix, never another throw', () => {
    for (const m of [...dump, ...events]) {
      for (let cut = 0; cut < m.payload.length; cut += 3) {
        try {
          decodeCtMessage({ ...m, payload: m.payload.subarray(0, cut) });
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }
    }
  });

  it('random payloads and bit flips give DecodeError, never another throw or a hang', () => {
    const base = dump[0].payload;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
          fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
            const b = Buffer.from(base);
            b[i] = v;
            return b;
          }),
        ),
        (payload) => {
          try {
            decodeCtMessage({ type: 0x100, flags: 2, seq: 1, pid: 0, payload });
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

function canon(ip: string): string {
  if (!ip.includes(':')) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}
