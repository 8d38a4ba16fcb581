import { describe, expect, it } from 'vitest';
import { Announcer } from '../../../examples/spin/domain/announce.js';
import type { SpinNode } from '../../../examples/spin/domain/model.js';
import { captureBody, pcapHeader, pcapRecord } from '../../../examples/spin/io/capture.js';
import type { SpinMessage } from '../../../examples/spin/io/contract.js';

const node = (id: number, ips: string[], mac?: string) => ({ id, ips: new Set(ips), mac }) as unknown as SpinNode;

describe('Announcer', () => {
  it('holds a new MAC-less node and every later message until the kernel answered; nodeInfo first, with the MAC', async () => {
    let answer: (mac: string | undefined) => void = () => {};
    const n = node(7, ['192.168.77.11']);
    const a: Announcer = new Announcer({
      live: () => true,
      current: (x) => x,
      isIgnored: () => false,
      json: (x) => ({ id: x.id, ...(x.mac ? { mac: x.mac } : {}), ips: [...x.ips] }),
      learnMac: (mac) => {
        (n as { mac?: string }).mac = mac;
        a.pending.add(n);
      },
      lookupMac: () => new Promise((r) => (answer = r)),
    });
    const out: SpinMessage[] = [];
    a.messages$.subscribe((m) => out.push(m));
    a.pending.add(n);
    a.flush();
    a.emit({ topic: 'SPIN/traffic', payload: '{"command":"dnsquery"}', retain: false });
    expect(out).toEqual([]);
    answer('02:00:00:00:77:11');
    await a.settled();
    expect(out.map((m) => m.topic)).toEqual(['SPIN/traffic/node/7', 'SPIN/traffic']);
    expect(JSON.parse(out[0].payload).result.mac).toBe('02:00:00:00:77:11');
    // Announced once: a later change is published at once, without asking again.
    a.pending.add(n);
    a.flush();
    expect(out).toHaveLength(3);
  });

  it('publishes at once when no lookup is configured or the node has its MAC', () => {
    const a = new Announcer({
      live: () => true,
      current: (x) => x,
      isIgnored: () => false,
      json: (x) => ({ id: x.id }),
      learnMac: () => {},
    });
    const out: SpinMessage[] = [];
    a.messages$.subscribe((m) => out.push(m));
    a.pending.add(node(1, ['10.0.0.1']));
    a.flush();
    expect(out).toHaveLength(1);
  });
});

describe('pcap', () => {
  it('writes a LINKTYPE_RAW header and records; logs both directions of every address', () => {
    const h = pcapHeader();
    expect(h.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(h.readUInt32LE(20)).toBe(101);
    const r = pcapRecord(1_700_000_000_123.5, Buffer.from([0x45, 0, 0, 20]));
    expect([r.readUInt32LE(0), r.readUInt32LE(4), r.readUInt32LE(8), r.length]).toEqual([
      1_700_000_000, 123_500, 4, 20,
    ]);
    const body = captureBody(['192.168.77.11', 'fd77::11'], 4460);
    expect(body).toContain('ip saddr { 192.168.77.11 } log group 4460');
    expect(body).toContain('ip6 daddr { fd77::11 } log group 4460');
    expect(body.match(/type filter hook (\w+)/g)).toEqual([
      'type filter hook input',
      'type filter hook forward',
      'type filter hook output',
    ]);
  });
});
