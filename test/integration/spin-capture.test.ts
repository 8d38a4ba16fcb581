// PCAP capture of one device through NFLOG: the app's /spin_api/capture
// streams a pcap that tshark reads, holding the device's packets (and no
// other client's), bounded in time, behind the login; the capture's nft
// table is gone afterwards.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpinApp } from '../../examples/spin/app.js';
import { generateTraffic, type HomeNetwork, run } from '../../src/testing/index.js';
import { type SpinLab, socketRpc, startSpinLab, TEST_AUTHORIZATION, tcpWorks } from '../helpers/spin-core.js';

let home: HomeNetwork;
let app: SpinApp;
let sock: string;
let dir: string;
let lab: SpinLab;
const table = `spin_c${process.pid % 100_000}`;

/** What the app logged. */
const logged: string[] = [];
/** A capture table a killed instance left: an owner whose pid is gone. */
const stale = `flowgrab_${table}_cap7`;

beforeAll(async () => {
  lab = await startSpinLab(
    'spin-capture',
    { tableName: table, periods: { trafficMs: 250 }, log: (l) => logged.push(l) },
    async (h) => {
      const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
      const body = `comment "flowgrab pid=${dead} start=1"\n chain c { type filter hook input priority 0; log group 107; }`;
      await h.router.exec(['nft', '-f', '-'], { input: `table inet ${stale} {\n ${body}\n}\n` });
    },
  );
  ({ home, app, sock, dir } = lab);
  await generateTraffic(home, { rounds: 1, ipv6: false });
});

afterAll(() => lab?.close());

const capture = (query: string, auth = TEST_AUTHORIZATION) =>
  fetch(`${app.httpUrl}/spin_api/capture?${query}`, { headers: auth ? { authorization: auth } : {} });

describe('PCAP capture', () => {
  it('a capture table a killed instance left is removed at start', async () => {
    expect(logged).toContain(`stale firewall tables removed: inet ${stale}`);
    expect((await home.router.exec(['nft', 'list', 'tables'])).stdout).not.toContain(stale);
  });

  it('streams the laptop’s packets for the seconds asked; tshark reads them; the capture table goes away', async () => {
    const [laptop, phone] = home.clients;
    const devices = (await socketRpc(sock, 'list_devices')).result as { id: number; mac: string }[];
    const id = devices.find((d) => d.mac === laptop.mac)?.id as number;
    const response = await capture(`node=${id}&seconds=3`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/vnd.tcpdump.pcap');
    const body = response.arrayBuffer();
    // Traffic while the capture runs (bounded: the capture ends after 3 s).
    let finished = false;
    void body.finally(() => {
      finished = true;
    });
    for (let i = 0; i < 40 && !finished; i++) {
      await Promise.all([tcpWorks(home, laptop), tcpWorks(home, phone)]);
    }
    const file = join(dir, 'laptop.pcap');
    writeFileSync(file, Buffer.from(await body));
    const ips = ((await socketRpc(sock, 'get_device_data', { node: id })).result as { ips: string[] }).ips;
    const fields = ['ip.src', 'ip.dst', 'tcp.dstport', 'ipv6.src', 'ipv6.dst'].flatMap((f) => ['-e', f]);
    const r = await run(['tshark', '-r', file, '-T', 'fields', ...fields], {
      timeoutMs: 30_000,
    });
    const lines = r.stdout.trim().split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    // Every packet is one of the laptop's (IPv4 or IPv6); both directions of its exchange with the server are there.
    for (const l of lines)
      expect(
        ips.some((ip) => l.split('\t').includes(ip)),
        l,
      ).toBe(true);
    expect(lines.some((l) => l.startsWith(`${laptop.ipv4}\t${home.server.ipv4}\t${home.server.tcpPort}`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${home.server.ipv4}\t${laptop.ipv4}`))).toBe(true);
    expect(lines.some((l) => l.includes(phone.ipv4))).toBe(false);
    const tables = (await home.router.exec(['nft', 'list', 'tables'])).stdout;
    expect(tables).not.toContain(`flowgrab_${table}_cap`);
  });

  it('is behind the login and bounded: no login 401, too long 400, unknown node 404', async () => {
    expect((await capture('node=1&seconds=1', '')).status).toBe(401);
    expect((await capture('node=1&seconds=100000')).status).toBe(400);
    expect((await capture('node=999999&seconds=1')).status).toBe(404);
    // Another site's <img> (a browser, no fetch metadata over plain http, no Referer of ours) starts nothing.
    const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0' };
    const fromPage = (query: string, headers: Record<string, string>) =>
      fetch(`${app.httpUrl}/spin_api/capture?${query}`, { headers: { authorization: TEST_AUTHORIZATION, ...headers } });
    expect((await fromPage(`device=${home.clients[0].mac}&seconds=1`, browser)).status).toBe(403);
    expect(
      (await fromPage(`device=${home.clients[0].mac}&seconds=1`, { ...browser, referer: 'http://evil.example/' }))
        .status,
    ).toBe(403);
    // The app's own page sends its Referer (same-origin policy): taken (an unknown node, so nothing starts).
    expect((await fromPage('node=999999&seconds=1', { ...browser, referer: `${app.httpUrl}/` })).status).toBe(404);
    expect((await capture(`device=${home.clients[0].mac}&seconds=0`)).status).toBe(400);
  });
});
