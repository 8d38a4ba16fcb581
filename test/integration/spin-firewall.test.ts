/**
 * The SPIN firewall's name sets under a DNS answer listing many addresses of a listed name: they reach the
 * kernel in one nft transaction (one nft run each made 256 addresses 12 s of serialised work), each with its
 * own timeout, and later answers extend them.
 */
import { describe, expect, it } from 'vitest';
import type { Enforcement } from '../../examples/spin/domain/blocks.js';
import { Firewall } from '../../examples/spin/io/firewall.js';
import type { Netns } from '../../src/testing/lab/index.js';
import { fileLab } from '../helpers/lab.js';

let ns: Netns;
fileLab(async (lab) => {
  ns = await lab.netns('spinfw');
});

const state = (): Enforcement => ({ block: [], allow: [], pairs: [], blockNames: new Map(), allowNames: new Map() });

/** The elements of a set as nft lists them (`198.18.0.1 timeout 1h expires 59m59s`, …). */
async function elements(table: string, set: string): Promise<{ elem: string; timeout?: number }[]> {
  const r = await ns.exec(['nft', '-j', 'list', 'set', 'inet', table, set]);
  const doc = JSON.parse(r.stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
  const elem = doc.nftables.find((x) => x.set)?.set?.elem ?? [];
  return elem.map((e) => {
    const x = e as { elem?: { val: string; timeout?: number } } | string;
    return typeof x === 'string' ? { elem: x } : { elem: String(x.elem?.val), timeout: x.elem?.timeout };
  });
}

describe('SPIN firewall: addresses of listed names', () => {
  it('256 addresses from one answer: one nft transaction, every address in its set with its timeout', async () => {
    const fw = new Firewall(state, { netns: ns.name, name: 'spinfw' });
    try {
      await fw.apply();
      const table = (await ns.exec(['nft', 'list', 'tables'])).stdout.match(/inet (\S*spinfw\S*)/)?.[1];
      expect(table).toBeDefined();
      const exp = Date.now() + 3600_000;
      const ips = Array.from({ length: 256 }, (_, i) => `198.18.${i >> 4}.${(i & 15) + 1}`);
      await Promise.all(ips.map((ip) => fw.nameAddress('block', ip, exp)));
      expect(fw.nameTransactions).toBe(1);
      const got = await elements(table!, 'bname4');
      expect(got.map((e) => e.elem).sort()).toEqual([...ips].sort());
      for (const e of got) expect(e.timeout).toBeGreaterThan(3500);
      // A later answer extends one address, and an allowed name's address goes to its own set: one more.
      await Promise.all([fw.nameAddress('block', ips[0], exp + 3600_000), fw.nameAddress('allow', '2001:db8::5', exp)]);
      expect(fw.nameTransactions).toBe(2);
      expect((await elements(table!, 'bname4')).find((e) => e.elem === ips[0])?.timeout).toBeGreaterThan(7000);
      expect((await elements(table!, 'aname6')).map((e) => e.elem)).toEqual(['2001:db8::5']);
    } finally {
      await fw.close();
    }
  });
});
