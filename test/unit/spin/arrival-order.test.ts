/**
 * The SPIN core whatever order its sources deliver in: the same neighbour,
 * DNS and conntrack records fed in every order (a traffic second after each,
 * the kernel's MAC answers arriving late) give the same counts, and the
 * published sequence keeps SPIN's guarantee: a node's nodeInfo before any
 * message that names it, and no message naming a node already merged away.
 */
import { describe, expect, it } from 'vitest';
import { Core } from '../../../examples/spin/core.js';
import type { SpinMessage } from '../../../examples/spin/io/contract.js';
import type { SpinStore } from '../../../examples/spin/io/store.js';
import type { NeighRecord } from '../../../src/sources/arp/record.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';
import type { DnsRecord } from '../../../src/sources/dns/record.js';

const LAPTOP = { ip: '192.168.77.11', mac: '02:00:00:00:77:11' };
const PHONE = { ip: '192.168.77.12', mac: '02:00:00:00:77:12' };
const SERVER = '198.51.100.10';
const NAME = 'www.shop.test';
const T0 = 1_700_000_000_000;

const neigh = (who: { ip: string; mac: string }): NeighRecord => ({
  type: 'new',
  ts: T0,
  family: 'ipv4',
  ifindex: 2,
  ifname: 'lan0',
  ip: who.ip,
  mac: who.mac,
  state: ['REACHABLE'],
  router: false,
  usable: true,
});

const dnsBase = {
  ts: T0,
  family: 'ipv4',
  transport: 'udp',
  client: LAPTOP.ip,
  clientPort: 40000,
  server: '192.168.77.1',
  serverPort: 53,
  hook: 'input',
  id: 7,
  qname: NAME,
  qtype: 'A',
  rcode: 'NOERROR',
  answers: [],
  resolved: [],
} as const;
const query = { ...dnsBase, kind: 'query' } as unknown as DnsRecord;
const answer = {
  ...dnsBase,
  kind: 'response',
  resolved: [{ name: NAME, ip: SERVER, ttl: 300, via: [] }],
  rtt: 1.5,
} as unknown as DnsRecord;

/** A poll's counter growth of one connection. */
const delta = (src: string, dst: string, dport: number, packets: number, bytes: number): ConntrackRecord =>
  ({
    type: 'update',
    id: dport,
    family: 'ipv4',
    proto: 'tcp',
    protonum: 6,
    orig: { src, dst, sport: 50000, dport, packets, bytes },
    reply: { src: dst, dst: src, sport: dport, dport: 50000, packets: 0, bytes: 0 },
    status: ['CONFIRMED'],
    ts: T0,
    delta: { orig: { packets, bytes }, reply: { packets: 0, bytes: 0 } },
  }) as unknown as ConntrackRecord;

type Step = { what: string; feed: (core: Core) => void };
const STEPS: Step[] = [
  { what: 'arp laptop', feed: (c) => c.onNeigh(neigh(LAPTOP)) },
  { what: 'arp phone', feed: (c) => c.onNeigh(neigh(PHONE)) },
  { what: 'dns query', feed: (c) => c.onDns(query) },
  { what: 'dns answer', feed: (c) => c.onDns(answer) },
  { what: 'ct laptop→server', feed: (c) => c.onConntrack(delta(LAPTOP.ip, SERVER, 443, 5, 500)) },
  { what: 'ct laptop→phone', feed: (c) => c.onConntrack(delta(LAPTOP.ip, PHONE.ip, 8080, 3, 300)) },
];

/** Nothing here reaches the store but the user names (no timers run, nothing is listed or blocked). */
const store = { names: () => new Map<string, string>() } as unknown as SpinStore;

/** Lookups of the kernel's neighbour table answered only when the test says (late answers). */
function lateLookups() {
  const waiting: (() => void)[] = [];
  const known = new Map([[LAPTOP.ip, LAPTOP.mac]]);
  return {
    lookup: (ip: string) => new Promise<string | undefined>((r) => waiting.push(() => r(known.get(ip)))),
    answerAll: () => {
      for (const w of waiting.splice(0)) w();
    },
  };
}

async function run(order: Step[], answerBetween: boolean) {
  const lookups = lateLookups();
  const core = new Core(
    { store, ownAddresses: async () => [], lookupMac: lookups.lookup, now: () => T0 },
    () => async () => undefined,
  );
  const out: SpinMessage[] = [];
  core.messages$.subscribe((m) => out.push(m));
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      lookups.answerAll();
      await new Promise((r) => setImmediate(r));
    }
  };
  for (const step of order) {
    step.feed(core);
    core.publishTraffic();
    if (answerBetween) await settle();
  }
  await settle();
  core.publishTraffic();
  await settle();
  return { core, out };
}

/** Checks the published sequence; returns the traffic packets per (from, to) in final node ids. */
function check(core: Core, out: SpinMessage[], label: string): Map<string, number> {
  const announced = new Set<number>();
  const mergedTo = new Map<number, number>();
  const firstInfo = new Map<number, { mac?: string; ips: string[] }>();
  const counted: [number, number, number][] = [];
  for (const m of out) {
    if (!m.payload) continue; // the clear of a merged node's retained topic
    const body = JSON.parse(m.payload);
    const named = (id: number, what: string) =>
      expect(announced.has(id), `${label}: ${what} names node ${id} without a nodeInfo before it`).toBe(true);
    switch (body.command) {
      case 'nodeInfo':
        announced.add(body.result.id);
        if (!firstInfo.has(body.result.id)) firstInfo.set(body.result.id, body.result);
        break;
      case 'nodeMerged':
        announced.delete(body.result.id);
        mergedTo.set(body.result.id, body.result['merged-to']);
        break;
      case 'nodeDeleted':
        announced.delete(body.result.id);
        break;
      case 'traffic':
        for (const f of body.result.flows) {
          named(f.from, 'traffic');
          named(f.to, 'traffic');
          counted.push([f.from, f.to, f.count]);
        }
        break;
      case 'dnsquery':
        named(body.result.from, 'dnsquery');
        named(body.result.queriednode, 'dnsquery');
        break;
    }
  }
  // SPIN's page takes a device's MAC from its first nodeInfo: the laptop's says it (the kernel was asked).
  const laptop = core.model.ofMac(LAPTOP.mac)!;
  expect(firstInfo.get(laptop.id)?.mac, `${label}: laptop's first nodeInfo`).toBe(LAPTOP.mac);
  const final = (id: number) => {
    while (mergedTo.has(id)) id = mergedTo.get(id)!;
    return id;
  };
  const byPair = new Map<string, number>();
  for (const [a, b, n] of counted) {
    const k = `${final(a)}>${final(b)}`;
    byPair.set(k, (byPair.get(k) ?? 0) + n);
  }
  return byPair;
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('SPIN core: arrival order of ARP, DNS and conntrack records', () => {
  it('every order gives the same counts and nodeInfo before every message naming a node', async () => {
    // Every third of the 720 orders (each pair of records still comes in both orders, many times over),
    // the kernel's MAC answers arriving after each record or only at the end, alternately.
    const orders = permutations(STEPS).filter((_, i) => i % 3 === 0);
    expect(orders).toHaveLength(240);
    for (const [i, order] of orders.entries()) {
      const label = order.map((s) => s.what).join(', ');
      const { core, out } = await run(order, i % 2 === 1);
      const byPair = check(core, out, label);
      const laptop = core.model.ofMac(LAPTOP.mac)!;
      const phone = core.model.ofMac(PHONE.mac)!;
      const server = core.model.ofIp(SERVER)!;
      expect(server, label).toBeDefined();
      expect([...server.domains], label).toEqual([`${NAME}.`]);
      expect([...laptop.ips], label).toEqual([LAPTOP.ip]);
      // Each delta counted once: in a traffic message and on the device flows of each device end.
      expect(byPair.get(`${laptop.id}>${server.id}`), label).toBe(5);
      expect(byPair.get(`${laptop.id}>${phone.id}`), label).toBe(3);
      const flows = core.model.flowsOf(laptop);
      expect(flows.find((f) => f.to === server.id)?.packets, label).toBe(5);
      expect(flows.find((f) => f.to === phone.id)?.packets, label).toBe(3);
      expect(core.model.flowsOf(phone).find((f) => f.to === laptop.id)?.packets, label).toBe(3);
    }
  });

  it('holds deltas for addresses that never become devices only for a while, and at most a bounded number', async () => {
    const { PendingDeltas } = await import('../../../examples/spin/domain/pending.js');
    let now = T0;
    const p = new PendingDeltas(() => now, { maxEntries: 3, maxAgeMs: 1000 });
    const hold = (dst: string) =>
      p.hold({
        src: LAPTOP.ip,
        dst,
        proto: 6,
        sport: 1,
        dport: 2,
        icmp: 0,
        packets: 1,
        bytes: 10,
        srcIsDevice: true,
        dstIsDevice: false,
        published: true,
      });
    for (const d of ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4']) hold(d);
    expect(p.size).toBe(3);
    expect(p.counters.dropped).toBe(1);
    expect(p.take('203.0.113.1')).toEqual([]); // the oldest went
    now += 1001;
    hold('203.0.113.5');
    expect(p.size).toBe(1);
    expect(p.counters.expired).toBe(3);
    expect(p.take('203.0.113.5').map((h) => h.dstUncounted)).toEqual([{ packets: 1, bytes: 10 }]);
    expect(p.size).toBe(0);
  });
});

describe('SPIN core: DNS answers it learns from', () => {
  it('learns nothing from an answer nobody asked for (no rtt): a LAN host cannot tie a name to an address', async () => {
    const forged = { ...answer, resolved: [{ name: NAME, ip: '203.0.113.9', ttl: 0xffffffff, via: [] }] };
    delete (forged as { rtt?: number }).rtt;
    const steps: Step[] = [STEPS[0], { what: 'forged answer', feed: (c) => c.onDns(forged as DnsRecord) }];
    const { core } = await run(steps, true);
    expect(core.model.ofIp('203.0.113.9')).toBeUndefined();
    // The same answer to a query seen is learnt.
    const { core: asked } = await run(
      [STEPS[0], { what: 'answer', feed: (c) => c.onDns({ ...forged, rtt: 2 } as DnsRecord) }],
      true,
    );
    expect([...(asked.model.ofIp('203.0.113.9')?.domains ?? [])]).toEqual([`${NAME}.`]);
  });
});
