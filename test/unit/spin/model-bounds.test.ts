/**
 * What one LAN host can make the SPIN model hold or compute through the traffic and DNS answers it causes:
 * a port scan, one packet to each of many hosts, a name of its own resolving to thousands of addresses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Blocks, MAX_ANSWER_ADDRESSES } from '../../../examples/spin/domain/blocks.js';
import { MAX_FLOWS_PER_DEVICE } from '../../../examples/spin/domain/flows.js';
import { compareIps, sortIps } from '../../../examples/spin/domain/ip.js';
import { IpList } from '../../../examples/spin/domain/lists.js';
import { MAX_IPS_PER_NODE, NodeModel } from '../../../examples/spin/domain/model.js';

function model(maxNodes?: number) {
  let now = 1_700_000_000_000;
  const m = new NodeModel({
    now: () => now,
    maxNodes,
    events: { modified: () => {}, merged: () => {}, deleted: () => {} },
  });
  return { m, advance: (ms: number) => (now += ms) };
}

const v4 = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

describe('SPIN model bounds against one LAN host', () => {
  it(`a port scan: a device keeps ${MAX_FLOWS_PER_DEVICE} flows, its least recently seen going first`, () => {
    const { m, advance } = model();
    const dev = m.learn({ mac: '02:00:00:00:00:01', ips: ['192.168.1.10'] });
    const target = m.learn({ ips: ['198.51.100.1'] });
    const other = m.learn({ ips: ['198.51.100.2'] });
    m.countFlow(dev, other, 443, 0, 1, 100);
    for (let port = 1; port <= 65_535; port++) {
      if (port % 1000 === 0) {
        advance(1000);
        m.countFlow(dev, other, 443, 0, 1, 100); // kept busy: it stays
      }
      m.countFlow(dev, target, port, 0, 1, 60);
    }
    expect(dev.flowCount).toBeLessThanOrEqual(MAX_FLOWS_PER_DEVICE);
    expect(dev.flowCount).toBeGreaterThan(MAX_FLOWS_PER_DEVICE * 0.8);
    const flows = m.flowsOf(dev);
    expect(flows.length).toBe(dev.flowCount);
    const ports = new Set(flows.filter((f) => f.to === target.id).map((f) => f.dstPort));
    expect(ports.has(65_535)).toBe(true);
    expect(ports.has(1)).toBe(false);
    expect(flows.find((f) => f.to === other.id)?.packets).toBe(66);
    expect([target.refs, other.refs]).toEqual([1, 1]);
    // Counting an existing flow again finds it (no new flow, no eviction).
    const before = dev.flowCount;
    m.countFlow(dev, target, 65_535, 0, 1, 60);
    expect(dev.flowCount).toBe(before);
  });

  it('one packet to each of many hosts: the peers a device holds do not keep the model over maxNodes', async () => {
    const { m, advance } = model(1000);
    const devs = Array.from({ length: 4 }, (_, d) => m.learn({ mac: `02:00:00:00:00:0${d}`, ips: [`192.168.1.${d}`] }));
    for (let i = 0; i < 5000; i++) {
      advance(10);
      const peer = m.learn({ ips: [v4(i)] });
      m.countFlow(devs[i % 4], peer, 53, 0, 1, 60);
      if (i % 100 === 99) await Promise.resolve(); // the model trims after the record being taken in
    }
    await Promise.resolve();
    expect(m.size).toBeLessThanOrEqual(1000);
    // The newest flows stay, their peers with them; every reference counts a live flow.
    const newest = m.ofIp(v4(4999))!;
    expect(m.flowsOf(devs[3]).some((f) => f.to === newest.id)).toBe(true);
    for (const d of devs) for (const f of m.flowsOf(d)) expect(m.get(f.to)?.refs).toBeGreaterThan(0);
    expect(m.ofIp(v4(0))).toBeUndefined();
  });

  it('devices filling the model: a pass that cannot make room is not run again for every new node', async () => {
    const { m, advance } = model(1000);
    const mac = (d: number) =>
      `02:00:00:00:${(d >> 8).toString(16).padStart(2, '0')}:${(d & 255).toString(16).padStart(2, '0')}`;
    let passes = 0;
    const inner = m as unknown as { makeRoom: () => void };
    const makeRoom = inner.makeRoom.bind(m);
    inner.makeRoom = () => {
      passes++;
      makeRoom();
    };
    // Devices cannot be evicted: 2000 of them overfill the model, one record each.
    for (let d = 0; d < 2000; d++) {
      advance(10);
      m.learn({ mac: mac(d), ips: [`192.168.${d >> 8}.${d & 255}`] });
      await Promise.resolve(); // the model trims after the record being taken in
    }
    expect(m.size).toBe(2000);
    // One pass per tenth of maxNodes new nodes once full, not one per node (1000).
    expect(passes).toBeGreaterThan(0);
    expect(passes).toBeLessThanOrEqual(1000 / 100 + 1);
    // The devices go; then peers nothing holds come: the failed passes do not let them grow the model past
    // maxNodes by more than the same tenth.
    for (const d of m.devices()) m.remove(d);
    let most = 0;
    for (let i = 0; i < 3000; i++) {
      advance(10);
      m.learn({ ips: [v4(i)] });
      await Promise.resolve();
      most = Math.max(most, m.size);
    }
    expect(most).toBeLessThanOrEqual(1000 + 100 + 1);
  });

  it('freeing peers never drops flows to nodes that cannot go: kept (blocked) ones and other devices', async () => {
    const { m, advance } = model(1000);
    const a = m.learn({ mac: '02:00:00:00:01:01', ips: ['192.168.1.1'] });
    const b = m.learn({ mac: '02:00:00:00:01:02', ips: ['192.168.1.2'] });
    const kept = Array.from({ length: 50 }, (_, i) => m.learn({ ips: [`172.16.0.${i}`] }));
    for (const k of kept) {
      k.persistent = 1; // held by a blocked pair or a list
      m.countFlow(a, k, 443, 0, 1, 60);
    }
    m.countFlow(a, b, 22, 0, 1, 60); // the oldest flows of all
    for (let i = 0; i < 3000; i++) {
      advance(10);
      m.countFlow(a, m.learn({ ips: [v4(i)] }), 53, 0, 1, 60);
      if (i % 100 === 99) await Promise.resolve();
    }
    await Promise.resolve();
    expect(m.size).toBeLessThanOrEqual(1000);
    const to = new Set(m.flowsOf(a).map((f) => f.to));
    for (const k of [b, ...kept]) expect(to.has(k.id)).toBe(true);
  });

  it(`a name resolving to thousands of addresses keeps ${MAX_IPS_PER_NODE} of them, counting the rest`, () => {
    const { m } = model();
    for (let i = 0; i < 3000; i++) m.learn({ ips: [v4(i)], domains: ['cdn.attacker.test.'] });
    const n = m.ofDomain('cdn.attacker.test.')!;
    expect(n.ips.size).toBe(MAX_IPS_PER_NODE);
    expect(m.ipsDropped).toBe(3000 - MAX_IPS_PER_NODE);
    expect(m.ofIp(v4(2999))).toBeUndefined(); // not kept: it leads nowhere
    expect(m.ofIp(v4(0))).toBe(n);
    expect(m.toJson(n).ips).toHaveLength(MAX_IPS_PER_NODE);
  });

  it(`remembers the newest ${MAX_ANSWER_ADDRESSES} answer addresses of a name`, () => {
    const { m } = model();
    const lists = { block: new IpList('block'), allow: new IpList('allow'), ignore: new IpList('ignore') };
    const blocks = new Blocks(m, lists);
    for (let i = 0; i < 1000; i++) blocks.remember('cdn.attacker.test.', v4(i), Date.now() + 60_000);
    lists.block.add({ kind: 'domain', text: 'attacker.test.', key: 'attacker.test' });
    blocks.seed('block', 'cdn.attacker.test.');
    const addrs = [...blocks.nameAddrs.block.keys()];
    expect(addrs).toHaveLength(MAX_ANSWER_ADDRESSES);
    expect(addrs).toContain(v4(999));
    expect(addrs).not.toContain(v4(0));
  });

  it('sorts addresses as compareIps does, parsing each once', () => {
    const ip = fc.oneof(
      fc.ipV4(),
      fc.ipV6().filter((a) => !a.includes('%')),
    );
    fc.assert(
      fc.property(fc.uniqueArray(ip, { maxLength: 40 }), (ips) => {
        expect(sortIps(ips)).toEqual([...ips].sort(compareIps));
      }),
    );
  });
});
