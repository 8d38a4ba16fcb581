/**
 * Tables of flowgrab's own under concurrent processes: several processes
 * installing one table name at once end with one table and one owner (the
 * others told it is busy), and a table another live process put in place of
 * ours is not deleted by our remove() nor by a sweep.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NftTable, sweepStaleTables } from '../../src/sources/firewall/nft.js';
import { ownerTag, processStart } from '../../src/sources/firewall/owner.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { DIST } from '../helpers/daemon.js';
import { fileLab } from '../helpers/lab.js';
import { racer } from '../helpers/racer.js';

let ns: Netns;
fileLab(async (lab) => {
  ns = await lab.netns('nftrace');
});

const BODY = 'chain c {\n  type filter hook input priority 0; policy accept;\n}';

/** A process that, told to go, installs `name` in the namespace and stays its live owner (test/helpers/racer.ts). */
const installer = (name: string) =>
  racer(
    `const { NftTable } = await import(${JSON.stringify(join(DIST, 'src/sources/firewall/nft.js'))});`,
    `await NftTable.install({ family: 'inet', name: ${JSON.stringify(name)}, body: ${JSON.stringify(BODY)}, netns: ${JSON.stringify(ns.name)} }); return 'ok';`,
  );

async function tables(): Promise<string> {
  return (await ns.exec(['nft', 'list', 'ruleset'])).stdout;
}

describe('nft tables under concurrent processes', () => {
  it('four processes installing one table at once: one owns it, the others are told it is busy', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `race${round}`;
      const procs = Array.from({ length: 4 }, () => installer(name));
      try {
        // All at once: each looks at the table while the others do.
        await waitFor(() => procs.every((p) => p.ready()), { timeoutMs: 60_000, what: 'every installer to load' });
        for (const p of procs) p.go();
        await waitFor(() => procs.every((p) => p.said() !== ''), {
          timeoutMs: 60_000,
          what: 'every installer to answer',
        });
        const said = procs.map((p) => p.said().split(' ')[0]);
        expect(said.filter((w) => w !== 'ok' && w !== 'busy')).toEqual([]);
        const winners = procs.filter((p) => p.said() === 'ok');
        expect(winners.length).toBe(1);
        // The table that stands is the winner's, and there is one.
        const rules = await tables();
        expect(rules.match(new RegExp(`table inet flowgrab_${name} `, 'g'))?.length).toBe(1);
        expect(rules).toContain(`flowgrab pid=${winners[0].pid} `);
        expect(rules).toMatch(/chain c \{\n\s+type filter hook input priority filter; policy accept;/);
      } finally {
        await Promise.all(procs.map((p) => p.end()));
      }
    }
    // Their owners gone, the tables are stale: a sweep takes them.
    expect((await sweepStaleTables(ns.name)).sort()).toEqual([
      'inet flowgrab_race0',
      'inet flowgrab_race1',
      'inet flowgrab_race2',
    ]);
  });

  it('remove() and a sweep leave alone the table a live process put in place of ours', async () => {
    const mine = await NftTable.install({ family: 'inet', name: 'taken', body: BODY, netns: ns.name });
    // Another live process (pid 1, as its tag says) replaces it: a new table under the same name.
    const other = ownerTag({ pid: 1, start: processStart(1) ?? 0 });
    await ns.exec(['nft', 'delete', 'table', 'inet', 'flowgrab_taken']);
    await ns.exec(['nft', '-f', '-'], { input: `table inet flowgrab_taken {\n  comment "${other}"\n${BODY}\n}\n` });
    await mine.remove();
    expect(await tables()).toContain(other);
    expect(await sweepStaleTables(ns.name)).toEqual([]);
    expect(await tables()).toContain(other);
    await ns.exec(['nft', 'delete', 'table', 'inet', 'flowgrab_taken']);
  });

  it('a sweep leaves the tables it is told to keep (their owner is about to replace them in one transaction)', async () => {
    const dead = ownerTag({ pid: 0x3ffffff0, start: 1 });
    for (const name of ['keepme', 'sweepme'])
      await ns.exec(['nft', '-f', '-'], { input: `table inet flowgrab_${name} {\n  comment "${dead}"\n${BODY}\n}\n` });
    expect(await sweepStaleTables(ns.name, ['keepme'])).toEqual(['inet flowgrab_sweepme']);
    expect(await tables()).toContain('flowgrab_keepme');
    // The install that follows takes the stale table's place, the rules never absent in between.
    const t = await NftTable.install({ family: 'inet', name: 'keepme', body: BODY, netns: ns.name });
    expect((await tables()).match(/table inet flowgrab_keepme /g)?.length).toBe(1);
    await t.remove();
  });

  it('a table installed again by its own process replaces the first, and remove() deletes the one that stands', async () => {
    const spec = { family: 'inet' as const, name: 'again', body: BODY, netns: ns.name };
    await NftTable.install(spec);
    const second = await NftTable.install(spec); // ours already: replaced in one transaction
    expect((await tables()).match(/table inet flowgrab_again /g)?.length).toBe(1);
    await second.remove();
    expect(await tables()).not.toContain('flowgrab_again');
  });
});
