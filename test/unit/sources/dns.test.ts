import * as dnsPacket from 'dns-packet';
import { lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { decodeNflogPacket, encodeNflogPacket } from '../../../src/netlink/nflog/packet.js';
import { NFNL_SUBSYS_ULOG } from '../../../src/netlink/nfnetlink.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import { DnsCache, MAX_NAMES_PER_IP } from '../../../src/sources/dns/cache.js';
import { resolveChains } from '../../../src/sources/dns/message.js';
import type { DnsRecord } from '../../../src/sources/dns/record.js';
import { dns } from '../../../src/sources/dns/source.js';
import { TcpReassembler } from '../../../src/sources/dns/tcp.js';
import type { SourceNotice } from '../../../src/sources/notice.js';
import { TCP_SYN } from '../../../src/sources/packet.js';
import { ackReply, FakeKernel } from '../../../src/testing/fake-netlink.js';
import { fixtureMessages } from '../../helpers/fixtures.js';

const golden = fixtureMessages('nflog-dns', NFNL_SUBSYS_ULOG).filter((m) => m.type === 0x400);
const asDatagram = (m: NetlinkMessage) => encodeMessage(m, m.payload);

/** A fake kernel that ACKs NFLOG config, or refuses the bind with `bindErrno`. */
function nflogKernel(bindErrno = 0): FakeKernel {
  const k = new FakeKernel();
  let first = true;
  k.handler = (req) => {
    const errno = first ? bindErrno : 0;
    first = false;
    return [ackReply(req, errno)];
  };
  return k;
}

async function feed(k: FakeKernel, msgs: Buffer[], n: number, notices?: SourceNotice[]): Promise<DnsRecord[]> {
  const done = lastValueFrom(
    dns({
      installRules: false,
      group: 5,
      transport: k.transport,
      notices: notices && { next: (x) => notices.push(x) },
    }).pipe(take(n), toArray()),
  );
  // Deliver once the four NFLOG config requests (bind, mode, threshold, flags) went out, not after a fixed sleep.
  await k.until(() => (k.sockets[0]?.sent.length ?? 0) >= 4, { what: 'the four NFLOG config requests' });
  for (const m of msgs) k.openSockets[0].deliver(m, 0);
  return done;
}

describe('dns source (fake kernel, golden NFLOG packets)', () => {
  it('binds the group with queue-threshold 1 and sequence numbers', async () => {
    const k = nflogKernel();
    await feed(k, golden.slice(0, 2).map(asDatagram), 2);
    const attrs = k.sockets[0].sent.map((m) => m.payload.subarray(4).toString('hex'));
    expect(attrs).toEqual(['0500010001000000', '0a0002000000ffff02000000', '0800050000000001', '0600060000010000']);
  });

  it('turns UDP and TCP, IPv4 and IPv6 exchanges into records with answers, chains and rtt', async () => {
    const recs = await feed(nflogKernel(), golden.map(asDatagram), 12);
    const responses = recs.filter((r) => r.kind === 'response');
    const chain = responses.find((r) => r.qname === 'www.c.test' && r.transport === 'udp')!;
    expect(chain.resolved).toEqual([{ name: 'www.c.test', ip: '10.231.0.50', ttl: 60, via: ['cdn.c.test', 'a.test'] }]);
    expect(chain).toMatchObject({
      client: '10.231.0.2',
      server: '10.231.0.1',
      serverPort: 53,
      rcode: 'NOERROR',
      hook: 'input',
    });
    expect(chain.rtt).toBeGreaterThanOrEqual(0);
    expect(responses.find((r) => r.qtype === 'AAAA')?.resolved[0].ip).toBe('fd00:231::50');
    expect(responses.find((r) => r.qname === 'nope.test')?.rcode).toBe('NXDOMAIN');
    const tcp = recs.filter((r) => r.transport === 'tcp');
    expect(tcp.map((r) => r.kind)).toEqual(['query', 'response']);
    expect(tcp[1].resolved[0]).toMatchObject({ ip: '10.231.0.50', via: ['cdn.c.test', 'a.test'] });
    const v6 = recs.find((r) => r.family === 'ipv6' && r.kind === 'query')!;
    expect(v6).toMatchObject({ client: 'fd00:231::2', server: 'fd00:231::1', qname: 'b.test' });
  });

  it('counts a sequence gap as exact kernel loss', async () => {
    const notices: SourceNotice[] = [];
    // Skip messages 2..5: four sequence numbers missing.
    await feed(nflogKernel(), [golden[0], golden[1], golden[6]].map(asDatagram), 3, notices);
    expect(notices).toEqual([expect.objectContaining({ kind: 'loss', where: 'kernel', count: 4, source: 'dns' })]);
  });

  it('flags a packet to port 53 that is not DNS, and keeps going', async () => {
    const p = decodeNflogPacket(golden[0].payload);
    const ip = Buffer.from(p.payload!);
    const garbage = Buffer.concat([ip.subarray(0, 28), Buffer.from('garbage\n')]);
    garbage.writeUInt16BE(garbage.length, 2);
    garbage.writeUInt16BE(16, 24);
    const bad = encodeNflogPacket({ ...p, payload: garbage });
    const m = encodeMessage({ type: bad.type, flags: 0, seq: 0, pid: 0 }, bad.payload);
    const [r, next] = await feed(nflogKernel(), [m, asDatagram(golden[1])], 2);
    expect(r).toMatchObject({
      kind: 'query',
      error: 'truncated',
      errorMessage: expect.stringMatching(/not a DNS message/),
      qname: '',
    });
    expect(next.kind).toBe('response');
  });

  it('flags a first IP fragment and never parses bytes after a zero-length UDP datagram (issue 14)', async () => {
    const p = decodeNflogPacket(golden[0].payload);
    const ip = Buffer.from(p.payload!);
    expect(ip[0]).toBe(0x45);
    const frag = Buffer.from(ip);
    frag.writeUInt16BE(0x2000, 6); // MF, offset 0
    const zlip = Buffer.from(ip);
    zlip.writeUInt16BE(8, 24); // UDP length 8: the DNS bytes after it are not part of the datagram
    const asMsg = (payload: Buffer) => {
      const e = encodeNflogPacket({ ...p, payload });
      return encodeMessage({ type: e.type, flags: 0, seq: 0, pid: 0 }, e.payload);
    };
    const [f, z] = await feed(nflogKernel(), [asMsg(frag), asMsg(zlip)], 2);
    expect(f).toMatchObject({ error: 'fragment', clientPort: expect.any(Number), qname: '' });
    expect(z).toMatchObject({ error: 'truncated', qname: '' });
  });

  it('signals readiness once the group is bound and configured, not before', async () => {
    const k = nflogKernel();
    const held: (() => void)[] = [];
    const answer = k.handler!;
    // The kernel answers the flags request (the last of the four) only when the test says so.
    k.handler = (req, sock) => {
      if (sock.sent.length < 4) return answer(req, sock);
      held.push(() => sock.deliver(answer(req, sock)![0], 0));
      return [];
    };
    let ready: Promise<void> | undefined;
    let capturing = false;
    const sub = dns({ installRules: false, group: 6, transport: k.transport, ready: (p) => (ready = p) }).subscribe();
    expect(ready).toBeDefined();
    void ready!.then(() => (capturing = true));
    await k.until(() => held.length === 1, { what: 'the flags request' });
    await k.settle();
    expect(capturing).toBe(false);
    held[0]();
    await ready;
    sub.unsubscribe();
  });

  it('reports a group owned by another reader as FG_ERR_BUSY naming the group', async () => {
    const k = nflogKernel(1);
    let ready: Promise<void> | undefined;
    const err = await lastValueFrom(
      dns({ installRules: false, group: 7, transport: k.transport, ready: (p) => (ready = p) }),
    ).catch((e) => e);
    expect(err).toMatchObject({
      code: 'FG_ERR_BUSY',
      message: expect.stringMatching(/NFLOG group 7 is already bound/),
    });
    // The readiness signal fails the same way (a flow's activate rejects with it).
    await expect(ready).rejects.toBe(err);
  });
});

const dnsMsg = (id: number, name: string) =>
  dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name, class: 'IN' }],
  });
const framed = (...m: Buffer[]) => Buffer.concat(m.flatMap((x) => [Buffer.from([x.length >> 8, x.length & 255]), x]));

describe('TCP reassembly', () => {
  const seg = (seq: number, data: Buffer, flags = 0x18) => ({ key: 'k', seq, flags, data, now: 0 });

  it('joins a message split across segments and splits two messages in one segment', () => {
    const t = new TcpReassembler();
    const a = dnsMsg(1, 'a.test');
    const b = dnsMsg(2, 'b.test');
    const stream = framed(a, b, a);
    t.push({ ...seg(99, Buffer.alloc(0)), flags: TCP_SYN });
    expect(t.push(seg(100, stream.subarray(0, 5))).messages).toEqual([]);
    const got = t.push(seg(105, stream.subarray(5, 40))).messages;
    const rest = t.push(seg(140, stream.subarray(40))).messages;
    expect([...got, ...rest].map((m) => dnsPacket.decode(m).id)).toEqual([1, 2, 1]);
  });

  it('waits for a missing segment, ignores retransmissions, and gives up past its byte limit', () => {
    const t = new TcpReassembler({ maxStreamBytes: 64, maxStreams: 4, idleMs: 1000 });
    const s = framed(dnsMsg(7, 'x.test'));
    t.push({ ...seg(999, Buffer.alloc(0)), flags: TCP_SYN });
    expect(t.push(seg(1010, s.subarray(10))).messages).toEqual([]);
    expect(t.push(seg(1000, s.subarray(0, 10))).messages.map((m) => dnsPacket.decode(m).id)).toEqual([7]);
    expect(t.push(seg(1000, s.subarray(0, 10))).messages).toEqual([]);
    const t2 = new TcpReassembler({ maxStreamBytes: 64, maxStreams: 4, idleMs: 1000 });
    const big = framed(Buffer.alloc(200));
    expect(t2.push(seg(1, big.subarray(0, 100))).dropped).toMatch(/exceeded 64 bytes/);
    expect(t2.size).toBe(0);
  });

  it('reassembles out of order arrivals into the right order', () => {
    const t = new TcpReassembler();
    const s = framed(dnsMsg(3, 'o.test'));
    t.push({ ...seg(499, Buffer.alloc(0)), flags: TCP_SYN });
    t.push(seg(500 + 10, s.subarray(10)));
    const out = t.push(seg(500, s.subarray(0, 10))).messages;
    expect(out.map((m) => dnsPacket.decode(m).questions?.[0].name)).toEqual(['o.test']);
  });
});

describe('CNAME chains and the DNS cache', () => {
  it('follows chains, stops on loops', () => {
    const a = (name: string, type: string, data: string, ttl = 60) => ({ name, type, data, ttl });
    expect(
      resolveChains('w.t', [a('w.t', 'CNAME', 'c.t', 30), a('c.t', 'CNAME', 'e.t'), a('e.t', 'A', '1.2.3.4', 90)]),
    ).toEqual([{ name: 'w.t', ip: '1.2.3.4', ttl: 30, via: ['c.t', 'e.t'] }]);
    expect(resolveChains('x.t', [a('x.t', 'CNAME', 'y.t'), a('y.t', 'CNAME', 'x.t')])).toEqual([]);
  });

  it('learns only from responses to a query it saw, and keeps a name a day at most', () => {
    let now = 0;
    const c = new DnsCache({ now: () => now });
    const response = (ip: string, ttl: number, rtt?: number, hook: DnsRecord['hook'] = 'output'): DnsRecord => ({
      ts: 0,
      kind: 'response',
      family: 'ipv4',
      transport: 'udp',
      client: '192.168.1.20',
      clientPort: 40000,
      server: '192.168.1.66',
      serverPort: 53,
      hook,
      id: 7,
      qname: 'bank.example',
      qtype: 'A',
      rcode: 'NOERROR',
      answers: [],
      resolved: [{ name: 'bank.example', ip, ttl, via: [] }],
      ...(rtt === undefined ? {} : { rtt }),
    });
    // Nobody asked: a LAN host's forged answer with a TTL of 136 years names nothing.
    c.add(response('93.184.216.34', 0xffffffff));
    expect(c.names('93.184.216.34')).toEqual([]);
    // An answer to a query seen is learnt, for a day at most.
    c.add(response('198.51.100.7', 0xffffffff, 3.2));
    expect(c.names('198.51.100.7')).toEqual(['bank.example']);
    now = 86_400_000 + 1;
    expect(c.names('198.51.100.7')).toEqual([]);
    // Asked for (a capture that cannot see the queries): unsolicited answers too.
    const open = new DnsCache({ unsolicited: true, maxTtlS: 60, now: () => now });
    open.add(response('93.184.216.34', 0xffffffff));
    expect(open.names('93.184.216.34')).toEqual(['bank.example']);
    now += 300_001; // the minimum TTL (300 s) wins over a smaller maximum
    expect(open.names('93.184.216.34')).toEqual([]);
    // A device asked a server of its own directly (forward): its answer names nothing, unless that server is
    // trusted; the router's own resolver traffic (input, output) is.
    c.add(response('203.0.113.66', 60, 2, 'forward'));
    expect(c.names('203.0.113.66')).toEqual([]);
    expect(c.refused.untrusted).toBe(1);
    const trusting = new DnsCache({ trustedServers: ['192.168.1.66', '2001:DB8:0::53'], now: () => now });
    trusting.add({ ...response('203.0.113.68', 60, 2, 'forward'), server: '2001:db8::53' });
    expect(trusting.names('203.0.113.68')).toEqual(['bank.example']);
    trusting.add(response('203.0.113.66', 60, 2, 'forward'));
    c.add(response('203.0.113.67', 60, 2, 'input'));
    expect([trusting.names('203.0.113.66'), c.names('203.0.113.67')]).toEqual([['bank.example'], ['bank.example']]);
  });

  it('an address keeps its 16 names expiring last; a client holds a tenth of the cache', () => {
    const now = 0;
    const c = new DnsCache({ maxEntries: 1000, now: () => now });
    // A wildcard domain of the attacker's: 20 000 names for one popular address.
    for (let i = 0; i < 20_000; i++) c.set('142.250.1.1', `n${i}.evil.test`, 3600, '192.168.1.66');
    expect(c.names('142.250.1.1')).toHaveLength(MAX_NAMES_PER_IP);
    // A real name with a shorter TTL than all 16 does not get in; a longer one does, pushing the first out.
    c.set('142.250.1.1', 'www.example.com', 300, '192.168.1.20');
    expect(c.names('142.250.1.1')).not.toContain('www.example.com');
    c.set('142.250.1.1', 'www.example.com', 7200, '192.168.1.20');
    expect(c.names('142.250.1.1')[0]).toBe('www.example.com');
    // Names of many addresses from one client: at most a tenth of the cache; another client's still go in.
    for (let i = 0; i < 5000; i++) c.set(`10.9.${i >> 8}.${i & 255}`, `x${i}.evil.test`, 86_400, '192.168.1.66');
    expect(c.size).toBeLessThanOrEqual(1000 / 10 + 1);
    expect(c.refused.overShare).toBeGreaterThan(4000);
    c.set('198.51.100.1', 'shop.example', 300, '192.168.1.20');
    expect(c.names('198.51.100.1')).toEqual(['shop.example']);
  });

  it("a client at its share learns again once its names expired (a host's lookups all come from one client)", () => {
    let now = 0;
    const c = new DnsCache({ maxEntries: 100, minTtlS: 60, maxTtlS: 60, now: () => now });
    for (let i = 0; i < 10; i++) c.set(`10.5.0.${i}`, `a${i}.test`, 60, '127.0.0.1');
    c.set('10.5.1.0', 'over.test', 60, '127.0.0.1');
    expect(c.names('10.5.1.0')).toEqual([]); // at its share: refused
    now += 3_600_000; // all of them expired, none looked up since
    c.set('10.5.1.1', 'later.test', 60, '127.0.0.1');
    expect(c.names('10.5.1.1')).toEqual(['later.test']);
  });

  it('a full cache makes room down to 90 % at once, whatever the expired ones freed', () => {
    let now = 0;
    const c = new DnsCache({ minTtlS: 1, maxTtlS: 1000, maxEntries: 100, now: () => now });
    c.set('10.3.0.1', 'short', 1);
    for (let i = 0; i < 99; i++) c.set(`10.2.0.${i}`, `h${i}`, 500);
    now += 2000; // 'short' has expired: freeing it alone would leave the cache full, to be swept again next time
    c.set('10.4.0.1', 'late', 500);
    expect(c.size).toBe(90);
  });

  it('keeps TTL-0 names for the minimum, expires them after, and evicts the soonest to expire', () => {
    let now = 0;
    const c = new DnsCache({ minTtlS: 10, maxEntries: 10, now: () => now });
    c.set('10.0.0.1', 'Local.Lan.', 0);
    c.set('10.0.0.1', 'other.lan', 100);
    expect(c.names('10.0.0.1')).toEqual(['other.lan', 'local.lan']);
    now = 11_000;
    expect(c.names('10.0.0.1')).toEqual(['other.lan']);
    for (let i = 0; i < 20; i++) c.set(`10.1.0.${i}`, `h${i}`, i);
    expect(c.size).toBeLessThanOrEqual(10);
    expect(c.names('10.0.0.1')).toEqual(['other.lan']); // expires last: survives eviction
  });
});
