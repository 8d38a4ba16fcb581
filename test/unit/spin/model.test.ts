import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DOMAINS_PER_NODE, NodeModel, type SpinNode } from '../../../examples/spin/domain/model.js';

function setup(start = 1_700_000_000_000, maxNodes?: number) {
  let now = start;
  const merged: [number, number][] = [];
  const deleted: number[] = [];
  const modified: number[] = [];
  const m = new NodeModel({
    now: () => now,
    maxNodes,
    events: {
      modified: (n) => modified.push(n.id),
      merged: (id, into) => merged.push([id, into.id]),
      deleted: (n) => deleted.push(n.id),
    },
  });
  return { m, merged, deleted, modified, advance: (ms: number) => (now += ms) };
}

describe('node model', () => {
  it('gives ids from 1 and never reuses one', () => {
    const { m } = setup();
    const a = m.learn({ ips: ['192.0.2.1'] });
    const b = m.learn({ ips: ['192.0.2.2'] });
    expect([a.id, b.id]).toEqual([1, 2]);
    m.remove(b);
    expect(m.learn({ ips: ['192.0.2.3'] }).id).toBe(3);
  });

  it('merges nodes sharing an IP or a domain into the lowest id, publishing the merge after the survivor changed', () => {
    const { m, merged, modified } = setup();
    const a = m.learn({ ips: ['192.0.2.1'] });
    const b = m.learn({ domains: ['www.example.com.'] });
    modified.length = 0;
    const s = m.learn({ ips: ['192.0.2.1'], domains: ['WWW.example.com.'] });
    expect(s).toBe(a);
    expect(merged).toEqual([[b.id, a.id]]);
    expect(modified).toEqual([a.id]);
    expect(m.toJson(s)).toEqual({ id: 1, lastseen: s.lastseen, ips: ['192.0.2.1'], domains: ['www.example.com.'] });
    expect(m.get(b.id)).toBeUndefined();
  });

  it('prefers a device as survivor, and orders ips IPv4 first, domains by length', () => {
    const { m } = setup();
    m.learn({ ips: ['2001:db8::1'] });
    const d = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.0.2.9'] });
    const s = m.learn({ ips: ['2001:db8::1', '192.0.2.9'], domains: ['bb.example.', 'a.example.'] });
    expect(s).toBe(d);
    expect(m.toJson(s)).toMatchObject({
      mac: '02:00:00:00:00:01',
      ips: ['192.0.2.9', '2001:db8::1'],
      domains: ['a.example.', 'bb.example.'],
    });
  });

  it('never folds a second device into the first: an address that moves to another MAC moves alone', () => {
    const { m, merged } = setup();
    const a = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10', '192.168.1.11'] });
    const b = m.learn({ mac: '02:00:00:00:00:02', ips: ['192.168.1.10'] });
    expect(b).not.toBe(a);
    expect(merged).toEqual([]);
    expect([...a.ips]).toEqual(['192.168.1.11']);
    expect(m.ofIp('192.168.1.10')).toBe(b);
  });

  it('renumbers device flows to the survivor when their peer merges away, summing counters', () => {
    const { m } = setup();
    const dev = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    const x = m.learn({ ips: ['198.51.100.1'] });
    const y = m.learn({ ips: ['198.51.100.2'] });
    m.countFlow(dev, x, 443, 0, 10, 1000);
    m.countFlow(dev, y, 443, 0, 5, 500);
    const s = m.learn({ ips: ['198.51.100.1', '198.51.100.2'] });
    expect(s).toBe(x);
    expect(m.flowsOf(dev)).toEqual([
      { to: x.id, dstPort: 443, icmpType: 0, packets: 15, bytes: 1500, lastseen: expect.any(Number) },
    ]);
    expect(x.refs).toBe(1);
    expect(dev.flowCount).toBe(1);
  });

  it('ages flows: idle ones go above keepFlows, all go after maxIdle; referenced nodes do not expire', () => {
    const { m, advance } = setup();
    const dev = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    const peers = Array.from({ length: 5 }, (_, i) => m.learn({ ips: [`198.51.100.${i + 1}`] }));
    for (const p of peers) m.countFlow(dev, p, 80, 0, 1, 100);
    advance(60_000);
    m.countFlow(dev, peers[4], 80, 0, 1, 100); // the only active one
    expect(m.ageFlows(30_000, 3, 3_600_000, () => false)).toBe(2);
    expect(dev.flowCount).toBe(3);
    expect(m.flowsOf(dev).some((f) => f.to === peers[4].id)).toBe(true);
    // Held peers are not expired; the two without flows are.
    const gone = m.expire(10_000, 10_000, () => true);
    expect(gone.map((n) => n.id).sort()).toEqual(
      peers
        .filter((p) => p.refs === 0)
        .map((p) => p.id)
        .sort(),
    );
    expect(gone).toHaveLength(2);
    advance(4_000_000);
    expect(m.ageFlows(30_000, 3, 3_600_000, (_d, to) => to === peers[4].id)).toBe(2); // the held one stays
    expect(dev.flowCount).toBe(1);
  });

  it('keeps several ports to one peer apart, drops the oldest idle ones first and releases the peer with its last flow', () => {
    const { m, advance } = setup();
    const dev = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    const p = m.learn({ ips: ['198.51.100.1'] });
    const q = m.learn({ ips: ['198.51.100.2'] });
    m.countFlow(dev, p, 80, 0, 1, 100);
    advance(10_000);
    m.countFlow(dev, p, 443, 0, 1, 100);
    m.countFlow(dev, p, 0, 8, 1, 84);
    advance(10_000);
    m.countFlow(dev, q, 53, 0, 1, 60);
    m.countFlow(dev, p, 443, 0, 2, 200);
    expect(dev.flowCount).toBe(4);
    expect(p.refs).toBe(1);
    advance(60_000);
    // All four are idle; keep 2: port 80 (oldest), then ICMP go.
    expect(m.ageFlows(30_000, 2, 3_600_000)).toBe(2);
    expect(
      m
        .flowsOf(dev)
        .map((f) => [f.to, f.dstPort, f.icmpType, f.packets])
        .sort(),
    ).toEqual([
      [p.id, 443, 0, 3],
      [q.id, 53, 0, 1],
    ]);
    expect(m.ageFlows(30_000, 1, 3_600_000)).toBe(1); // 443 was last seen with 53: ties go in either order
    expect(dev.flowCount).toBe(1);
    expect(p.refs + q.refs).toBe(1);
    advance(4_000_000);
    expect(m.ageFlows(30_000, 1, 3_600_000)).toBe(1);
    expect([p.refs, q.refs, dev.flowCount]).toEqual([0, 0, 0]);
  });

  it("drops a device's flows that point at the device itself after a merge, keeping the others", () => {
    const { m } = setup();
    const a = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    const other = m.learn({ ips: ['192.168.1.20'] });
    const peer = m.learn({ ips: ['198.51.100.1'] });
    m.countFlow(a, other, 22, 0, 4, 400);
    m.countFlow(a, peer, 443, 0, 1, 100);
    // `other` turns out to be a itself (same MAC): the flow a→other is a flow to itself now.
    const s = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.20'] });
    expect(s).toBe(a);
    expect(m.flowsOf(a).map((f) => f.to)).toEqual([peer.id]);
    expect([a.flowCount, peer.refs]).toEqual([1, 1]);
  });

  it('expires a device only once its neighbour entry is gone and it was unseen for deviceRetain', () => {
    const { m, advance, deleted } = setup();
    const dev = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    advance(100_000);
    expect(m.expire(1000, 50_000, () => true)).toEqual([]);
    expect(m.expire(1000, 200_000, () => false)).toEqual([]);
    expect(m.expire(1000, 50_000, () => false)).toEqual([dev]);
    expect(deleted).toEqual([dev.id]);
  });
});

describe('node model invariants (fast-check)', () => {
  const ip = fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', '2001:db8::1', '2001:db8::2', '10.0.0.4');
  const domain = fc.constantFrom('a.test.', 'b.test.', 'c.test.', 'A.test.');
  const mac = fc.constantFrom('02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03');
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('learn' as const),
      mac: fc.option(mac, { nil: undefined }),
      ips: fc.array(ip, { maxLength: 3 }),
      domains: fc.array(domain, { maxLength: 2 }),
    }),
    fc.record({
      kind: fc.constant('flow' as const),
      a: ip,
      b: ip,
      port: fc.integer({ min: 0, max: 3 }),
      icmp: fc.integer({ min: 0, max: 1 }),
    }),
    fc.record({ kind: fc.constant('age' as const), ms: fc.integer({ min: 0, max: 100_000 }) }),
    fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  );

  it('every address and domain is held by one live node, devices have distinct MACs, flows point at live nodes with exact reference counts', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { m, merged, advance } = setup();
        const gone = new Set<number>();
        for (const o of ops) {
          if (o.kind === 'learn') m.learn({ mac: o.mac, ips: o.ips, domains: o.domains });
          else if (o.kind === 'flow') {
            const a = m.nodeOfIp(o.a, true);
            const b = m.nodeOfIp(o.b, true);
            if (a.mac) m.countFlow(a, b, o.port, o.icmp, 1, 10);
            if (b.mac) m.countFlow(b, a, o.port, o.icmp, 1, 10);
          } else if (o.kind === 'remove') {
            // Even a node that device flows point at: those flows go with it.
            const all = [...m.nodes()];
            if (all.length > 0) {
              const n = all[o.pick % all.length];
              m.remove(n);
              gone.add(n.id);
            }
          } else {
            advance(o.ms);
            m.ageFlows(50_000, 1, 90_000, () => false);
            for (const n of m.expire(60_000, 60_000, () => false)) gone.add(n.id);
          }
        }
        const nodes = [...m.nodes()];
        const ipOwner = new Map<string, SpinNode>();
        const macs = new Set<string>();
        const refs = new Map<SpinNode, Set<SpinNode>>();
        for (const n of nodes) {
          for (const x of n.ips) {
            expect(ipOwner.has(x)).toBe(false);
            ipOwner.set(x, n);
            expect(m.ofIp(x)).toBe(n);
          }
          if (n.mac) {
            expect(macs.has(n.mac)).toBe(false);
            macs.add(n.mac);
            expect(m.ofMac(n.mac)).toBe(n);
          }
          for (const d of n.domains) expect(m.ofDomain(d)).toBe(n);
          const flows = m.flowsOf(n);
          expect(n.flowCount).toBe(flows.length);
          const keys = new Set<string>();
          for (const f of flows) {
            const peer = m.get(f.to);
            expect(peer).toBeDefined();
            expect(f.to).not.toBe(n.id);
            expect(n.flows!.has(f.to)).toBe(true);
            const k = `${f.to}/${f.dstPort}/${f.icmpType}`;
            expect(keys.has(k)).toBe(false);
            keys.add(k);
            let r = refs.get(peer!);
            if (!r) refs.set(peer!, (r = new Set()));
            r.add(n);
          }
        }
        for (const n of nodes) expect(n.refs).toBe(refs.get(n)?.size ?? 0);
        for (const [id] of merged) expect(m.get(id)).toBeUndefined();
        for (const id of gone) expect(m.get(id)).toBeUndefined();
        expect(new Set(nodes.map((n) => n.id)).size).toBe(nodes.length);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('node model bounds (any LAN host chooses the names it asks for)', () => {
  it('keeps at most maxNodes: the least recently seen nodes nothing holds go first, devices and flow peers stay', async () => {
    const { m, deleted, advance } = setup(1_700_000_000_000, 100);
    const device = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    const peer = m.learn({ ips: ['198.51.100.1'] });
    m.countFlow(device, peer, 443, 0, 1, 100);
    const kept = m.learn({ ips: ['198.51.100.2'] });
    kept.persistent = 1;
    // A client asks for 5 000 random names, one a second.
    for (let i = 0; i < 5000; i++) {
      advance(1000);
      m.learn({ domains: [`r${i}.nx.test.`] });
      // The model trims once the record being taken in is done (its nodes stay valid while it is).
      if (i % 50 === 49) {
        expect(m.size).toBeGreaterThan(50);
        await Promise.resolve();
        expect(m.size).toBeLessThanOrEqual(100);
      }
    }
    expect(m.size).toBeLessThanOrEqual(100);
    expect(m.evicted).toBe(deleted.length);
    expect(m.evicted).toBeGreaterThan(4800);
    for (const n of [device, peer, kept]) expect(m.get(n.id)).toBe(n);
    // The newest names are the ones kept.
    expect(m.ofDomain('r4999.nx.test.')).toBeDefined();
    expect(m.ofDomain('r0.nx.test.')).toBeUndefined();
  });

  it(`keeps at most ${MAX_DOMAINS_PER_NODE} names per node, counting the rest, through learning and merging alike`, () => {
    const { m } = setup();
    for (let i = 0; i < 1000; i++) m.learn({ ips: ['203.0.113.7'], domains: [`h${i}.wild.test.`] });
    const n = m.ofIp('203.0.113.7')!;
    expect(n.domains.size).toBe(MAX_DOMAINS_PER_NODE);
    expect(m.domainsDropped).toBe(1000 - MAX_DOMAINS_PER_NODE);
    // A name node merged into a full node: its name is dropped with it, and it no longer leads anywhere.
    const other = m.learn({ domains: ['late.wild.test.'] });
    const both = m.learn({ ips: ['203.0.113.7'], domains: ['late.wild.test.'] });
    expect(both).toBe(n);
    expect(m.get(other.id)).toBeUndefined();
    expect(n.domains.size).toBe(MAX_DOMAINS_PER_NODE);
    expect(m.ofDomain('late.wild.test.')).toBeUndefined();
    expect(m.toJson(n).domains).toHaveLength(MAX_DOMAINS_PER_NODE);
  });
});
