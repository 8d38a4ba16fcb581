/**
 * Which DNS answers may fill the name lists (a block or an allow by name): the router's own resolver's, and
 * those of servers the owner named. A device asking a server of its own directly must not be able to tie a
 * listed name to an address of its choosing (unblocking it, or cutting another device off).
 */
import { describe, expect, it } from 'vitest';
import { onDns } from '../../../examples/spin/domain/ingest.js';
import type { IngestHost } from '../../../examples/spin/domain/ingest-host.js';
import { IpList } from '../../../examples/spin/domain/lists.js';
import type { DnsRecord } from '../../../src/sources/dns/record.js';

const LISTED = 'x.school.example';
const CHOSEN = '203.0.113.7';

function host(trusted?: string[]) {
  const followed: string[] = [];
  const remembered: string[] = [];
  const learnt: string[] = [];
  const core = {
    counters: { conntrack: 0, dns: 0, neigh: 0 },
    lists: { ignore: new IpList('ignore'), block: new IpList('block'), allow: new IpList('allow') },
    opts: { trustedResolvers: trusted && new Set(trusted) },
    periods: { dnsGraceS: 5 },
    model: {
      now: () => 1_700_000_000_000,
      learn: (n: { ips: string[] }) => {
        learnt.push(...n.ips);
        return {};
      },
    },
    blocks: { remember: (name: string, ip: string) => remembered.push(`${name} ${ip}`) },
    followNames: (names: string[], ip: string) => followed.push(`${names.join(',')} ${ip}`),
    flushNodeInfo: () => {},
  } as unknown as IngestHost;
  return { core, followed, remembered, learnt };
}

/** An answer for the listed name to a device at 192.168.77.11, from `server`, seen at `hook`. */
const answer = (hook: DnsRecord['hook'], server: string): DnsRecord => ({
  ts: 1_700_000_000_000,
  kind: 'response',
  family: 'ipv4',
  transport: 'udp',
  client: '192.168.77.11',
  clientPort: 40000,
  server,
  serverPort: 53,
  hook,
  id: 7,
  qname: LISTED,
  qtype: 'A',
  rcode: 'NOERROR',
  answers: [{ name: LISTED, type: 'A', ttl: 86_400, data: CHOSEN }],
  resolved: [{ name: LISTED, ip: CHOSEN, ttl: 86_400, via: [] }],
  rtt: 3,
});

describe('SPIN: DNS answers that may fill the name lists', () => {
  it("takes the router's own resolver's answers: to a device (output) and from its upstream (input)", () => {
    for (const hook of ['output', 'input'] as const) {
      const h = host();
      onDns(h.core, answer(hook, '192.168.77.1'));
      expect(h.followed, hook).toEqual([`${LISTED} ${CHOSEN}`]);
      expect(h.remembered, hook).toEqual([`${LISTED} ${CHOSEN}`]);
    }
  });

  it('ignores, for the lists, an answer from a server a device asked directly; the view still shows the name', () => {
    for (const hook of ['forward', 'prerouting', 'postrouting', 'unknown'] as const) {
      const h = host();
      onDns(h.core, answer(hook, '198.51.100.53'));
      expect(h.followed, hook).toEqual([]);
      expect(h.remembered, hook).toEqual([]);
      expect(h.learnt, hook).toEqual([CHOSEN]);
    }
  });

  it('takes answers passing through from a resolver the owner named (canonical addresses, as records carry)', () => {
    const h = host(['2001:db8::53', '198.51.100.53']);
    onDns(h.core, answer('forward', '198.51.100.53'));
    onDns(h.core, { ...answer('forward', '2001:db8::53'), family: 'ipv6' });
    onDns(h.core, answer('forward', '198.51.100.54'));
    expect(h.followed).toEqual([`${LISTED} ${CHOSEN}`, `${LISTED} ${CHOSEN}`]);
  });
});
