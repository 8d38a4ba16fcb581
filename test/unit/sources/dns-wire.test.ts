/** Issue 14 reproducers: DNS payloads that must not stall the decoder or yield wrong data. */

import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDns,
  decodeDnsCounted,
  dnsErrorOf,
  dnsFields,
  MAX_RESOLVED,
  OPAQUE_TYPES,
} from '../../../src/sources/dns/message.js';
import { DNS_ERROR_CODES, DnsWireError } from '../../../src/sources/dns/wire.js';

const hex = (s: string) => Buffer.from(s, 'hex');
const codeOf = (b: Buffer) => {
  try {
    decodeDns(b);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(DnsWireError);
    return dnsErrorOf(err).code;
  }
};

const response = (answers: dnsPacket.Answer[]) =>
  dnsPacket.encode({ type: 'response', id: 9, flags: 0x8180, questions: [{ name: 'a.test', type: 'A' }], answers });

/** A response with one record whose rdata is cut to `rdlen` bytes (the header's rdlength rewritten too). */
function cutRdata(type: 'A' | 'AAAA', data: string, rdlen: number): Buffer {
  const full = response([{ name: 'a.test', type, ttl: 60, data } as dnsPacket.Answer]);
  const full_rd = type === 'A' ? 4 : 16;
  const b = Buffer.from(full.subarray(0, full.length - (full_rd - rdlen)));
  b.writeUInt16BE(rdlen, b.length - rdlen - 2);
  return b;
}

const packetModule = createRequire(import.meta.url)('dns-packet') as {
  name: { decode: ((b: Buffer, offset?: number, opts?: { mail?: boolean }) => string) & { bytes: number } };
};

/** Names of the record types the decoder keeps as bytes. */
const OPAQUE_NAMES = new Set(
  [...OPAQUE_TYPES].map((n) =>
    (createRequire(import.meta.url)('dns-packet/types') as { toString(n: number): string }).toString(n),
  ),
);

/** A label in presentation form (RFC 1035 §5.1), written independently of the decoder under test. */
const present = (label: Buffer) =>
  [...label]
    .map((c) =>
      c === 0x2e || c === 0x5c
        ? `\\${String.fromCharCode(c)}`
        : c < 0x21 || c > 0x7e
          ? `\\${String(c).padStart(3, '0')}`
          : String.fromCharCode(c),
    )
    .join('');

/**
 * The oracle: dns-packet's own decode, names checked and counted by dns-packet's name decoder, but written as
 * their labels in presentation form (dns-packet joins raw labels with '.').
 */
function referenceDecode(b: Buffer): dnsPacket.Packet {
  const original = packetModule.name.decode;
  const ref = ((buf: Buffer, offset?: number, opts?: { mail?: boolean }) => {
    original(buf, offset, opts); // its checks and errors, and the bytes it read (set on name.decode: this function)
    const labels: string[] = [];
    for (let p = offset || 0, jumps = 0; buf[p] !== 0 && jumps < 128; ) {
      if (buf[p] >= 0xc0) {
        p = buf.readUInt16BE(p) - 0xc000;
        jumps++;
      } else {
        labels.push(present(buf.subarray(p + 1, p + 1 + buf[p])));
        p += 1 + buf[p];
      }
    }
    return labels.length ? labels.join('.') : '.';
  }) as typeof original;
  ref.bytes = 0;
  packetModule.name.decode = ref;
  try {
    return dnsPacket.decode(b);
  } finally {
    packetModule.name.decode = original;
  }
}

describe('DNS wire validation', () => {
  it('writes names in presentation form: a label holding a dot cannot pass for two labels', () => {
    // Labels "www.bank" "com", "a b" "x\\y" "nul\0" "\xff": what dns-packet read as www.bank.com etc.
    const name = (labels: Buffer[]) =>
      Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);
    const q = name([Buffer.from('www.bank'), Buffer.from('com')]);
    const a = name([Buffer.from('a b'), Buffer.from('x\\y'), Buffer.from('nul\0'), Buffer.from([0xff])]);
    const b = Buffer.concat([
      hex('000181800001000100000000'),
      q,
      hex('00010001'),
      a,
      hex('000100010000003c000401020304'),
    ]);
    const msg = decodeDns(b);
    expect(msg.questions?.[0].name).toBe('www\\.bank.com');
    expect(msg.answers?.[0].name).toBe('a\\032b.x\\\\y.nul\\000.\\255');
    expect(msg).toEqual(referenceDecode(b));
    expect(dnsFields(msg).qname).toBe('www\\.bank.com');
    // dns-packet itself cannot tell them apart from three plain labels.
    expect(dnsPacket.decode(b).questions?.[0].name).toBe('www.bank.com');
  });

  it('any label bytes: the name splits at its unescaped dots into exactly the labels sent', () => {
    const label = fc.uint8Array({ minLength: 1, maxLength: 20 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), (labels) => {
        const wire = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);
        const b = Buffer.concat([hex('000181800001000000000000'), wire, hex('00010001')]);
        const got = decodeDns(b).questions?.[0].name ?? '';
        // Its dots outside escapes separate labels: exactly one fewer than the labels sent.
        let dots = 0;
        for (let i = 0; i < got.length; i++) {
          if (got[i] === '\\') i++;
          else if (got[i] === '.') dots++;
        }
        expect(dots).toBe(labels.length - 1);
        expect(got).toBe(labels.map(present).join('.'));
      }),
      { numRuns: 500 },
    );
  });

  it('rejects the 23-byte packet that decoded into 196 350 records, before decoding anything', () => {
    const b = hex('0a0081800000ffffffffff0000001000010000003cffff');
    expect(codeOf(b)).toBe('bad-count');
  });

  it('rejects all-0xffff header counts in 12 bytes as bad-count', () => {
    expect(codeOf(hex('12348180ffffffffffffffff'))).toBe('bad-count');
  });

  it('rejects an A record cut 2 bytes short and an AAAA cut to 4 bytes (no "10.0.undefined.undefined")', () => {
    expect(codeOf(response([{ name: 'a.test', type: 'A', ttl: 60, data: '10.0.0.1' }]))).toBe('ok');
    expect(codeOf(cutRdata('A', '10.0.0.1', 2))).toBe('bad-rdata');
    expect(codeOf(cutRdata('AAAA', '2001:db8::1', 4))).toBe('bad-rdata');
  });

  it('flags a record whose rdata runs past the payload as truncated', () => {
    const b = response([{ name: 'a.test', type: 'A', ttl: 60, data: '10.0.0.1' }]);
    expect(codeOf(b.subarray(0, b.length - 2))).toBe('truncated');
    expect(codeOf(hex('1234'))).toBe('truncated');
  });

  it('rejects compression loops and forward pointers as bad-name', () => {
    // One question whose name is a pointer to itself (offset 12).
    const self = Buffer.concat([hex('000001000001000000000000'), hex('c00c00010001')]);
    expect(codeOf(self)).toBe('bad-name');
    const fwd = Buffer.concat([hex('000001000001000000000000'), hex('c01000010001'), hex('00')]);
    expect(codeOf(fwd)).toBe('bad-name');
  });

  it('refuses names that take more work than the payload justifies, and keeps real compressed responses', () => {
    // Every record points at one 127-label name: 8 label steps per byte for dns-packet.
    const long = Buffer.concat([Buffer.from(Array.from({ length: 127 }, () => [1, 0x61]).flat()), Buffer.from([0])]);
    const rr = hex('c00c000100010000003c00040a000001');
    const n = 80;
    const head = hex('000081800001000000000000');
    head.writeUInt16BE(n, 6);
    expect(codeOf(Buffer.concat([head, long, hex('00010001'), ...Array.from({ length: n }, () => rr)]))).toBe(
      'bad-name',
    );
    const answers = Array.from({ length: 80 }, (_, i) => ({
      name: 'x.cdn.example.com',
      type: 'A',
      ttl: 5,
      data: `10.0.0.${i}`,
    }));
    expect(codeOf(response(answers as dnsPacket.Answer[]))).toBe('ok');
    const ptr = dnsPacket.encode({
      type: 'response',
      questions: [{ name: `${'1.0.'.repeat(16)}ip6.arpa`, type: 'PTR' }],
      answers: [{ name: `${'1.0.'.repeat(16)}ip6.arpa`, type: 'PTR', ttl: 5, data: 'host.example.com' }],
    });
    expect(codeOf(ptr)).toBe('ok');
  });

  it('decodes compressed names through its per-message cache exactly as dns-packet, and lends the cache only meanwhile', () => {
    const req = createRequire(import.meta.url)('dns-packet') as { name: { decode: unknown } };
    const before = req.name.decode;
    // 60 records all pointing at one 14-label name, plus an SOA (mail form: the original decoder).
    const long = Buffer.concat([
      Buffer.from(Array.from({ length: 14 }, () => [2, 0x61, 0x62]).flat()),
      Buffer.from([0]),
    ]);
    const rr = hex('c00c000100010000003c00040a000001');
    const head = hex('000081800001003c00000000');
    const b = Buffer.concat([head, long, hex('00010001'), ...Array.from({ length: 60 }, () => rr)]);
    expect(decodeDns(b)).toEqual(referenceDecode(b));
    const soa = dnsPacket.encode({
      type: 'response',
      questions: [{ name: 'z.test', type: 'SOA' }],
      answers: [
        {
          name: 'z.test',
          type: 'SOA',
          ttl: 5,
          data: {
            mname: 'ns.z.test',
            rname: 'host\\.master.z.test',
            serial: 1,
            refresh: 2,
            retry: 3,
            expire: 4,
            minimum: 5,
          },
        },
      ],
    });
    expect(decodeDns(soa)).toEqual(referenceDecode(soa));
    expect(() => decodeDns(hex('12348180ffffffffffffffff'))).toThrow(DnsWireError);
    expect(req.name.decode).toBe(before);
  });

  it('keeps a NAPTR whose empty rdata made dns-packet read on with a NaN offset as its bytes (found by the fuzzer)', () => {
    const b = hex('472b012000010000000000010161047465737400001c0001000023052904d000000000000c000a000805c7fd263361');
    // NAPTR is one of the types kept as bytes (message.ts): dns-packet's decoder never sees it.
    expect(codeOf(b)).toBe('ok');
    const naptr = decodeDns(b).additionals?.[0] as { type: string; data: Buffer; ttl: number };
    expect(naptr.type).toBe('NAPTR');
    expect(naptr.data).toEqual(Buffer.alloc(0));
    expect(naptr.ttl).toBe(0x04d00000);
  });

  it('rejects TXT strings that do not fill their rdata (dns-packet read past them)', () => {
    const b = Buffer.from(response([{ name: 'a.test', type: 'TXT', ttl: 1, data: ['abc'] } as dnsPacket.Answer]));
    b[b.length - 4] = 9; // the string now claims 9 bytes of a 3-byte rdata remainder
    expect(codeOf(b)).toBe('bad-rdata');
  });

  it('a TXT record whose type byte became RRSIG is kept as bytes (dns-packet would read past its rdata)', () => {
    const b = Buffer.from([
      0, 9, 129, 128, 0, 1, 0, 4, 0, 0, 0, 0, 1, 97, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1, 1, 97, 4, 116, 101, 115, 116,
      0, 0, 5, 0, 1, 0, 0, 0, 5, 0, 8, 1, 98, 4, 116, 101, 115, 116, 0, 1, 98, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1, 0,
      0, 0, 5, 0, 4, 10, 0, 0, 1, 1, 98, 4, 116, 101, 115, 116, 0, 0, 28, 0, 1, 0, 0, 0, 5, 0, 16, 32, 1, 13, 184, 0, 0,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 98, 4, 116, 101, 115, 116, 0, 0, 46, 0, 1, 0, 0, 0, 5, 0, 12, 5, 104, 101, 108,
      108, 111, 5, 119, 111, 114, 108, 100,
    ]);
    expect(() => dnsPacket.decode(b)).toThrow(RangeError);
    const rrsig = decodeDns(b).answers?.[3] as { type: string; data: Buffer };
    expect(rrsig.type).toBe('RRSIG');
    expect(rrsig.data.toString('latin1')).toBe('\x05hello\x05world');
  });

  it('keeps every reason a stable code', () => {
    expect(DNS_ERROR_CODES).toContain(dnsErrorOf(new RangeError('x')).code);
    expect(dnsErrorOf(new RangeError('x')).code).toBe('not-dns');
  });

  it('decodes well-formed messages exactly as dns-packet does', () => {
    const name = fc.constantFrom('a.test', 'www.example.com', 'x.y.z.example', 'b.test');
    const rr = fc.oneof(
      fc.record({ name, type: fc.constant('A' as const), ttl: fc.nat(1000), data: fc.ipV4() }),
      fc.record({ name, type: fc.constant('AAAA' as const), ttl: fc.nat(1000), data: fc.constant('2001:db8::5') }),
      fc.record({ name, type: fc.constant('CNAME' as const), ttl: fc.nat(1000), data: name }),
      fc.record({
        name,
        type: fc.constant('MX' as const),
        ttl: fc.nat(1000),
        data: fc.record({ preference: fc.nat(9), exchange: name }),
      }),
      fc.record({
        name,
        type: fc.constant('TXT' as const),
        ttl: fc.nat(1000),
        data: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
      }),
    );
    fc.assert(
      fc.property(name, fc.array(rr, { maxLength: 8 }), (q, answers) => {
        const b = dnsPacket.encode({
          type: 'response',
          id: 1,
          questions: [{ name: q, type: 'A' }],
          answers: answers as dnsPacket.Answer[],
        });
        expect(decodeDns(b)).toEqual(referenceDecode(b));
      }),
      { numRuns: 300 },
    );
  });

  it('never consumes more than the payload, and A/AAAA data are always addresses (random and cut input)', () => {
    const seed = response([
      { name: 'a.test', type: 'CNAME', ttl: 5, data: 'b.test' },
      { name: 'b.test', type: 'A', ttl: 5, data: '10.0.0.1' },
      { name: 'b.test', type: 'AAAA', ttl: 5, data: '2001:db8::1' },
      { name: 'b.test', type: 'TXT', ttl: 5, data: ['hello', 'world'] } as dnsPacket.Answer,
    ]);
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
      fc.tuple(fc.nat(seed.length), fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })).map(([cut, at, v]) => {
        const b = Buffer.from(seed.subarray(0, cut));
        if (at < b.length) b[at] = v;
        return b;
      }),
    );
    fc.assert(
      fc.property(inputs, (b) => {
        let msg: dnsPacket.Packet;
        let bytes: number;
        try {
          ({ msg, bytes } = decodeDnsCounted(b));
        } catch (err) {
          expect(err).toBeInstanceOf(DnsWireError);
          return;
        }
        expect(bytes).toBeLessThanOrEqual(b.length);
        const all = [...(msg.answers ?? []), ...(msg.additionals ?? []), ...(msg.authorities ?? [])];
        // What we accept, dns-packet decodes alike in one go, consuming the same bytes; except records of the
        // types kept as bytes (OPAQUE_TYPES), which dns-packet decodes its way or refuses (a cut RRSIG, found here).
        if (!all.some((a) => OPAQUE_NAMES.has(a.type))) {
          expect(referenceDecode(b)).toEqual(msg);
          expect(dnsPacket.decode.bytes).toBe(bytes);
        }
        for (const a of all) {
          if (a.type === 'A') expect(isIP(a.data)).toBe(4);
          if (a.type === 'AAAA') expect(isIP(a.data)).toBe(6);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe('DNS output bounded by the packet (a LAN host chooses every byte of it)', () => {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
  /** A response to `a.test`: the question, then `n` records whose owner points at it, of `type` with `rdata`. */
  const records = (n: number, type: number, rdata: Buffer) => {
    const head = Buffer.from('123481800001000000000000', 'hex');
    head.writeUInt16BE(n, 6);
    const question = hex('016104746573740000010001'); // a.test, A, IN
    const rr = Buffer.concat([u16(0xc00c), u16(type), u16(1), u32(60), u16(rdata.length), rdata]);
    return Buffer.concat([head, question, ...Array.from({ length: n }, () => rr)]);
  };

  it('keeps NSEC, NSEC3, RRSIG, RP, NAPTR, DNSKEY … as their bytes in hex: no type-name bitmaps, no uncounted names', () => {
    // NSEC: next name root, a bitmap window of 32 bytes all set: 256 type names each, as dns-packet decodes it.
    const nsec = records(1400, 47, Buffer.concat([Buffer.from([0, 0, 32]), Buffer.alloc(32, 0xff)]));
    const fields = dnsFields(decodeDns(nsec));
    expect(fields.answers).toHaveLength(1400);
    expect(fields.answers[0]).toEqual({ name: 'a.test', type: 'NSEC', ttl: 60, data: `000020${'ff'.repeat(32)}` });
    // As JSON: hex doubles the rdata; the names and keys add the rest. Decoded, the bitmaps made 80-99 times.
    expect(JSON.stringify(fields).length).toBeLessThan(4 * nsec.length);
    // RP: two names, here pointers to the question's name (dns-packet decoded the first one uncached).
    const rp = dnsFields(decodeDns(records(3, 17, Buffer.concat([u16(0xc00c), u16(0xc00c)]))));
    expect(rp.answers.map((a) => [a.type, a.data])).toEqual(Array(3).fill(['RP', 'c00cc00c']));
    for (const [type, name] of [
      [46, 'RRSIG'],
      [35, 'NAPTR'],
      [48, 'DNSKEY'],
      [50, 'NSEC3'],
    ] as const) {
      expect(dnsFields(decodeDns(records(1, type, Buffer.from('0102c00c', 'hex')))).answers[0]).toMatchObject({
        type: name,
        data: '0102c00c',
      });
    }
    // The types it reads are still dns-packet's (CAA here), exactly.
    const caa = response([{ name: 'a.test', type: 'CAA', ttl: 5, data: { flags: 0, tag: 'issue', value: 'ca.test' } }]);
    expect(decodeDns(caa)).toEqual(referenceDecode(caa));
  });

  it('lists at most MAX_RESOLVED addresses, each chain once per hop: 16 CNAMEs of 253 characters and 3 600 As', () => {
    // Names of 253 characters: a label of 61 bytes (distinct per name), then three of 63.
    const long = (c: number) =>
      Buffer.concat([
        Buffer.from([61]),
        Buffer.alloc(61, c),
        ...[0, 1, 2].map(() => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])),
        Buffer.from([0]),
      ]);
    const parts: Buffer[] = [];
    let off = 12;
    const push = (b: Buffer) => {
      parts.push(b);
      off += b.length;
    };
    const names = [off];
    push(Buffer.concat([long(0x62), u16(1), u16(1)]));
    for (let i = 0; i < 16; i++) {
      const target = long(0x63 + i);
      push(Buffer.concat([u16(0xc000 | names[i]), u16(5), u16(1), u32(60), u16(target.length)]));
      names.push(off);
      push(target);
    }
    for (let i = 0; i < 3600; i++)
      push(Buffer.concat([u16(0xc000 | names[16]), u16(1), u16(1), u32(60), u16(4), u32(0x0a000000 + i)]));
    const head = Buffer.from('123481800001000000000000', 'hex');
    head.writeUInt16BE(3616, 6);
    const packet = Buffer.concat([head, ...parts]);
    const fields = dnsFields(decodeDns(packet));
    expect(fields.answers).toHaveLength(3616);
    expect(fields.resolved).toHaveLength(MAX_RESOLVED);
    expect(fields.resolved[0].via).toHaveLength(16);
    expect(fields.resolved[255].ip).toBe('10.0.0.255');
    // 2.2 MB of JSON for a 62 KB packet, not 16.9 MB: the answers' 253-character names are most of it.
    expect(JSON.stringify(fields).length).toBeLessThan(40 * packet.length);
  });
});
