import { describe, expect, it } from 'vitest';
import { blockedFlow } from '../../../examples/spin/core.js';
import type { Drop } from '../../../examples/spin/io/firewall.js';

const drop = (family: 4 | 6, proto: number): Drop => ({
  family,
  src: family === 4 ? '192.168.1.10' : 'fd00::10',
  dst: family === 4 ? '198.51.100.1' : '2001:db8::1',
  proto,
  sport: 40000,
  dport: 443,
  packets: 2,
  bytes: 120,
});

describe('blocked message flows (docs/spin-protocol.md §2.4)', () => {
  it('keeps protocol and ports for TCP and UDP', () => {
    for (const proto of [6, 17])
      expect(blockedFlow(drop(4, proto), 3, 57)).toEqual({
        from: 3,
        to: 57,
        protocol: proto,
        from_port: 40000,
        to_port: 443,
        size: 120,
        count: 2,
      });
  });

  it('reports any other protocol as 0 without ports, IPv6 included', () => {
    for (const [family, proto] of [
      [4, 1],
      [4, 132],
      [4, 47],
      [6, 58],
      [6, 132],
    ] as const)
      expect(blockedFlow(drop(family, proto), 3, 57)).toMatchObject({
        protocol: 0,
        from_port: 0,
        to_port: 0,
        count: 2,
      });
  });
});
