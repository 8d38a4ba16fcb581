import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NeighRecord } from '../../src/sources/arp/record.js';
import { arp } from '../../src/sources/arp/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { createHomeNetwork, type HomeNetwork, Netns, waitFor } from '../../src/testing/lab/index.js';

// `flowgrab arp` as users run it: the bundled command (dist/bin, built by npm run build).
const cli = join(import.meta.dirname, '../../dist/bin/flowgrab.js');

interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state: string[];
}
interface FdbEntry {
  mac: string;
  ifname: string;
  master?: string;
  state: string;
}

const UNUSABLE = ['FAILED', 'INCOMPLETE', 'NOARP', 'NONE'];
const row = (r: { ip: string; mac?: string; ifname: string; state: readonly string[] }) =>
  `${r.ip} ${r.ifname} ${r.mac} ${r.state.join(',')}`;

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('arp source on the home network', () => {
  let home: HomeNetwork;
  let ns: string;

  /** `ip neigh show` entries that are devices: what the source reports by default. */
  const ipNeigh = async (): Promise<IpNeigh[]> =>
    (JSON.parse((await home.router.ip(['-j', 'neigh', 'show'])).stdout) as IpNeigh[]).filter(
      (e) => e.lladdr && !e.state.some((s) => UNUSABLE.includes(s)),
    );
  const fdb = async (): Promise<FdbEntry[]> =>
    JSON.parse((await home.router.exec(['bridge', '-j', 'fdb', 'show', 'br', home.routerLan.bridge])).stdout);
  const dump = () => lastValueFrom(arp({ netns: ns }).pipe(toArray()));
  const pingRouter = (c: HomeNetwork['clients'][number]) =>
    Promise.all([
      c.ns.exec(['ping', '-c1', '-W2', home.routerLan.ipv4]),
      c.ns.exec(['ping', '-6', '-c1', '-W2', home.routerLan.ipv6]),
    ]);

  beforeAll(async () => {
    expect(existsSync(cli)).toBe(true);
    home = await createHomeNetwork();
    ns = home.router.name;
    await Promise.all(home.clients.map(pingRouter));
  });

  afterAll(async () => {
    await home?.close();
  });

  it('dumps what `ip neigh show` shows (ip, MAC, interface, state), the LAN clients on br0 included', async () => {
    let ours: string[] = [];
    let theirs: string[] = [];
    // States move (DELAY → REACHABLE → STALE) between two reads: compare until one read pair agrees.
    await waitFor(
      async () => {
        const before = (await ipNeigh()).map((e) => row({ ip: e.dst, mac: e.lladdr, ifname: e.dev, state: e.state }));
        ours = (await dump()).map(row).sort();
        theirs = before.sort();
        return JSON.stringify(ours) === JSON.stringify(theirs);
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'arp dump to equal ip neigh' },
    ).catch(() => {});
    expect(ours).toEqual(theirs);
    const recs = await dump();
    for (const c of home.clients) {
      for (const ip of [c.ipv4, c.ipv6]) {
        expect(recs.find((r) => r.ip === ip)).toMatchObject({ mac: c.mac, ifname: 'br0', usable: true, type: 'dump' });
      }
    }
  });

  it('names the bridge port each client is behind, as `bridge fdb show` does', async () => {
    const recs = (await dump()).filter((r) => r.ifname === 'br0');
    const learned = (await fdb()).filter((e) => e.master === 'br0' && e.state !== 'permanent');
    expect(recs.length).toBeGreaterThanOrEqual(6);
    for (const r of recs) {
      const f = learned.find((e) => e.mac === r.mac);
      expect(r.port).toBe(f?.ifname);
    }
    // The lab plugs client i into lan(i+1).
    home.clients.forEach((c, i) => {
      expect(recs.find((r) => r.ip === c.ipv4)?.port).toBe(`lan${i + 1}`);
    });
  });

  it('reports `ip neigh del` of a client as a delete', async () => {
    const c = home.clients[1];
    const seen: NeighRecord[] = [];
    const sub = arp({ netns: ns, events: true }).subscribe((r) => seen.push(r));
    try {
      await waitFor(() => seen.some((r) => r.type === 'dump' && r.ip === c.ipv4), { what: 'the dump' });
      await home.router.ip(['neigh', 'del', c.ipv4, 'dev', 'br0']);
      await waitFor(() => seen.some((r) => r.type === 'delete'), { what: 'a delete' });
      // Other entries may move on meanwhile (DELAY → PROBE → REACHABLE); this one ends deleted, once.
      const mine = seen.filter((r) => r.type !== 'dump' && r.ip === c.ipv4);
      expect(mine.at(-1)).toEqual(
        expect.objectContaining({ type: 'delete', ip: c.ipv4, mac: c.mac, ifname: 'br0', port: 'lan2', usable: false }),
      );
      expect(seen.filter((r) => r.type === 'delete').map((r) => r.ip)).toEqual([c.ipv4]);
      expect((await ipNeigh()).some((e) => e.dst === c.ipv4)).toBe(false);
    } finally {
      sub.unsubscribe();
    }
    await pingRouter(c);
  });

  it('sees a new client plugged into br0: its link, its MAC on the new port, its address', async () => {
    const seen: NeighRecord[] = [];
    const sub = arp({ netns: ns, events: true, family: 'ipv4' }).subscribe((r) => seen.push(r));
    // Named like the lab's namespaces, so the lab's teardown removes it even if this test fails half-way.
    const c4 = await Netns.create(`${home.id}-c4`);
    try {
      await waitFor(() => seen.length > 0, { what: 'the dump' });
      const mac = '02:00:00:00:77:14';
      await home.router.ip([
        'link',
        'add',
        'lan4',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'address',
        mac,
        'netns',
        c4.name,
      ]);
      await home.router.ip(['link', 'set', 'lan4', 'master', 'br0', 'up']);
      await c4.ipBatch(['link set eth0 up', 'addr add 192.168.77.14/24 dev eth0']);
      await c4.exec(['ping', '-c1', '-W2', home.routerLan.ipv4]);
      await waitFor(() => seen.some((r) => r.ip === '192.168.77.14'), { what: 'the new client' });
      expect(seen.find((r) => r.ip === '192.168.77.14')).toMatchObject({
        type: 'new',
        family: 'ipv4',
        mac,
        ifname: 'br0',
        port: 'lan4',
        usable: true,
      });
      expect(seen.every((r) => r.family === 'ipv4')).toBe(true);
    } finally {
      sub.unsubscribe();
      await c4.remove();
    }
  });

  it('never loses silently: an overflowing event socket gives a loss notice, and the resync restores the table', async () => {
    await home.router.ipBatch(['link add fl0 type veth peer name fl1', 'link set fl0 up']);
    const notices: SourceNotice[] = [];
    const live = new Map<string, NeighRecord>();
    const sub = arp({
      netns: ns,
      events: true,
      recvBufferBytes: 4096,
      lossCheckMs: 20,
      notices: { next: (n) => notices.push(n) },
    }).subscribe((r) => {
      const key = `${r.ifname}|${r.ip}`;
      if (r.type === 'delete') live.delete(key);
      else live.set(key, r);
    });
    try {
      await waitFor(() => live.size > 0, { what: 'the dump' });
      const lines = Array.from({ length: 2000 }, (_, i) => {
        const [hi, lo] = [i >> 8, i & 255];
        const mac = `02:99:00:00:${hi.toString(16).padStart(2, '0')}:${lo.toString(16).padStart(2, '0')}`;
        return `neigh add 10.99.${hi}.${lo} lladdr ${mac} dev fl0 nud permanent`;
      });
      // Synchronously: our event loop cannot read while the kernel sends 2000 events to a 4 KiB buffer.
      execFileSync('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') });
      const sameAsKernel = async () => {
        const kernel = (await ipNeigh()).map((e) => `${e.dev}|${e.dst}`).sort();
        return JSON.stringify([...live.keys()].sort()) === JSON.stringify(kernel);
      };
      await waitFor(sameAsKernel, { timeoutMs: 10_000, intervalMs: 100, what: 'the source to match the kernel' });
      const lost = notices.filter((n) => n.kind === 'loss' && n.where === 'kernel');
      expect(lost.length).toBeGreaterThan(0);
      expect(lost.reduce((s, n) => s + (n.count ?? 0), 0)).toBeGreaterThan(0);
      expect(notices.some((n) => n.kind === 'resync')).toBe(true);
      expect([...live.values()].filter((r) => r.ifname === 'fl0')).toHaveLength(2000);
      // Removing the link removes its neighbours: deletes (or a resync's deletes) bring the view back.
      await home.router.ip(['link', 'del', 'fl0']);
      await waitFor(sameAsKernel, { timeoutMs: 10_000, intervalMs: 100, what: 'the deletes' });
      expect([...live.values()].some((r) => r.ifname === 'fl0')).toBe(false);
    } finally {
      sub.unsubscribe();
      await home.router.ip(['link', 'del', 'fl0'], { allowFail: true });
    }
  });

  it('CLI: `flowgrab arp --dump --json --netns` prints the table as NDJSON and exits; text mode reads like ip neigh', async () => {
    const json = await runCli(['arp', '--dump', '--json', '--netns', ns]);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const recs = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NeighRecord);
    expect(recs.every((r) => r.type === 'dump' && r.netns === ns)).toBe(true);
    for (const c of home.clients) expect(recs.find((r) => r.ip === c.ipv4)?.mac).toBe(c.mac);
    let text = '';
    let want: string[] = [];
    await waitFor(
      async () => {
        const before = (await home.router.ip(['-4', 'neigh', 'show'])).stdout;
        text = (await runCli(['arp', '--dump', '--netns', ns, '--family', 'ipv4'])).stdout;
        want = before
          .trim()
          .split('\n')
          .map((l) => l.trimEnd()) // iproute2 leaves a trailing space after some states
          .filter((l) => !/FAILED|INCOMPLETE/.test(l));
        return (
          text
            .replace(/ port \S+/g, '')
            .trim()
            .split('\n')
            .sort()
            .join('\n') === want.sort().join('\n')
        );
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'text to match ip neigh' },
    ).catch(() => {});
    expect(
      text
        .replace(/ port \S+/g, '')
        .trim()
        .split('\n')
        .sort(),
    ).toEqual(want.sort());
    expect(text).toMatch(
      new RegExp(`^${home.clients[0].ipv4} dev br0 lladdr ${home.clients[0].mac} \\w+ port lan1$`, 'm'),
    );
    const bad = await runCli(['arp', '--dump', '--netns', 'no-such-netns-fg']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^flowgrab: error: /);
  });
});
