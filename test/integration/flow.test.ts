import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rec } from '../../src/filters/registry.js';
import { Flowgrab } from '../../src/flow/flowgrab.js';
import { sourcesTornDown } from '../../src/sources/teardown.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork, waitFor } from '../../src/testing/lab/index.js';
import { type LineProcess, startNodeAs } from '../helpers/daemon.js';

const root = join(import.meta.dirname, '../..');
const cli = join(root, 'dist/bin/flowgrab.js');
let home: HomeNetwork;

beforeAll(async () => {
  home = await createHomeNetwork();
});
afterAll(async () => {
  await sourcesTornDown();
  await home?.close();
});

function runNode(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/**
 * Netfilter netlink sockets (protocol 12) in the router's namespace that joined a
 * multicast group: conntrack event listeners (NFLOG and NFQUEUE sockets join none).
 */
async function conntrackListeners(): Promise<number> {
  const { stdout } = await home.router.exec(['cat', '/proc/net/netlink']);
  return stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === '12' && f[3] !== undefined && !/^0+$/.test(f[3])).length;
}

describe('flow graphs on the home network', () => {
  it('counts each LAN client’s TCP connections through the router', async () => {
    const fg = new Flowgrab();
    const f = fg.create({ name: 'per-client' });
    f.populate(
      `conntrack(events=[new], netns=${home.router.name}) -> match(proto == tcp && orig.src in 192.168.77.0/24 && orig.dport == ${home.server.tcpPort})`,
    );
    f.populate('-> count(by=orig.src, every=500ms)');
    await f.instantiate();
    const counts = new Map<string, number>();
    f.records$.subscribe((r) => {
      const src = (r.orig as { src: string }).src;
      counts.set(src, (counts.get(src) ?? 0) + (r.count as number));
    });
    await f.activate();
    const summary = await generateTraffic(home, { rounds: 2, ipv6: false });
    await waitFor(() => counts.size === 3 && [...counts.values()].every((c) => c >= 2), {
      timeoutMs: 20_000,
      what: 'two TCP connections counted per client',
    });
    const tcpPerClient = summary.exchanges.filter((e) => e.kind === 'tcp' && e.ok && e.family === 4).length / 3;
    for (const c of home.clients) expect(counts.get(c.ipv4)).toBe(tcpPerClient);
    expect(f.stats().nodes.map((n) => n.node)).toEqual(['conntrack', 'match', 'count']);
    await fg.close();
  });

  it('enrich() names conntrack peers from the DNS answers the kernel saw', async () => {
    const fg = new Flowgrab();
    const f = fg.create();
    f.populate(
      `conntrack(events=[new], netns=${home.router.name}) -> match(orig.dst == ${home.server.ipv4} && proto == tcp) -> enrich(fields=[orig.dst])`,
    );
    await f.instantiate();
    const got: Rec[] = [];
    f.records$.subscribe((r) => got.push(r));
    await f.activate();
    const c = home.clients[0].ns;
    await waitFor(async () => (await home.router.exec(['nft', 'list', 'tables'])).stdout.includes('flowgrab_dns'), {
      timeoutMs: 5000,
    });
    await c.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'www.shop.test', 'A']);
    // The answer reaches enrich's cache through NFLOG on its own path: connect until a NEW comes named
    // (each try a new connection), rather than sleeping and hoping the answer came first.
    const named = () => got.some((r) => (r.names as Record<string, string[]>)?.['orig.dst']?.includes('www.shop.test'));
    await waitFor(
      async () => {
        await c.exec(['sh', '-c', `echo hi | socat -t1 - TCP:${home.server.ipv4}:${home.server.tcpPort}`]);
        return named();
      },
      { timeoutMs: 10_000, intervalMs: 10, what: 'a connection named from the DNS answer' },
    );
    expect(got.length).toBeGreaterThan(0);
    expect(named()).toBe(true);
    await fg.close();
    await sourcesTornDown();
  });

  it('examples/dns-log and examples/conntrack-top run and print what the network did', async () => {
    const ip = (a: string) => a.replaceAll('.', '\\.');
    const logLine = new RegExp(`${ip(home.clients[0].ipv4)} www\\.shop\\.test A NOERROR ${ip(home.server.ipv4)}`);
    const talker = new RegExp(
      `${ip(home.server.ipv4)}\\s+\\d+ bytes\\s+\\d+ flows\\s+.*(www\\.shop\\.test|server\\.wan\\.test)`,
    );
    // Each runs until SIGINT (no --seconds: its timer would keep it alive), sent once it has printed what the
    // test looks for; the finally below kills what is left.
    const dnsLog = startNodeAs(undefined, [join(root, 'dist/examples/dns-log.js'), home.router.name]);
    const top = startNodeAs(undefined, [join(root, 'dist/examples/conntrack-top.js'), home.router.name]);
    try {
      // Both read DNS through NFLOG rules of their own (one table per group): traffic only once both are in place.
      await waitFor(
        async () => {
          const r = await home.router.exec(['nft', 'list', 'tables']);
          return (r.stdout.match(/flowgrab_dns_g\d+/g) ?? []).length >= 2;
        },
        { timeoutMs: 15_000, intervalMs: 200, what: 'both examples to install their DNS rules' },
      );
      // conntrack-top's event socket opens beside its DNS flow.
      await waitFor(async () => (await conntrackListeners()) >= 1, {
        timeoutMs: 15_000,
        intervalMs: 200,
        what: 'conntrack-top to listen for conntrack events',
      });
      await generateTraffic(home, { rounds: 1 });
      await home.router.exec(['conntrack', '-F']); // end the flows: their DESTROY carries the bytes
      const printed = (p: LineProcess, re: RegExp, what: string) =>
        waitFor(() => p.done || p.lines.some((l) => re.test(l)), { timeoutMs: 30_000, what }).catch((e) => {
          throw new Error(`${(e as Error).message}; stdout: ${p.lines.join(' | ')}; stderr: ${p.err}`, { cause: e });
        });
      // conntrack-top prints its top list every 5 s.
      await Promise.all([printed(dnsLog, logLine, 'the dns-log line'), printed(top, talker, 'the top talker')]);
      for (const p of [dnsLog, top]) p.kill('SIGINT');
      const [d, t] = await Promise.all([dnsLog.exited, top.exited]);
      expect(d.code, dnsLog.err).toBe(0);
      expect(dnsLog.lines.join('\n')).toMatch(logLine);
      expect(t.code, top.err).toBe(0);
      expect(top.lines.join('\n')).toMatch(/top talkers/);
      expect(top.lines.join('\n')).toMatch(talker);
    } finally {
      await Promise.all([dnsLog.stop(), top.stop()]);
      await sourcesTornDown();
    }
  });

  it('CLI: watch prints a graph’s output; record then replay gives the same records; graph check explains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-rec-'));
    const file = join(dir, 'ct.ndjson');
    const rec = runNode([
      cli,
      'record',
      `conntrack(events=[new]) -> match(proto == udp && orig.dport == ${home.server.udpPort})`,
      '--netns',
      home.router.name,
      '--out',
      file,
      '--count',
      '3',
    ]);
    await waitFor(async () => (await conntrackListeners()) >= 1, {
      timeoutMs: 15_000,
      what: 'flowgrab record to listen for conntrack events',
    });
    await generateTraffic(home, { rounds: 1 });
    expect((await rec).code).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const header = JSON.parse(lines[0]);
    expect(header).toMatchObject({
      flowgrab: 'recording',
      sources: [{ name: 'conntrack', params: { netns: home.router.name } }],
    });
    expect(lines).toHaveLength(4);
    const replayed = await runNode([cli, 'watch', `replay(file="${file}") -> project(orig.src, orig.dport)`, '--json']);
    expect(replayed.code).toBe(0);
    const want = lines.slice(1).map((l) => {
      const r = JSON.parse(l);
      return { type: r.type, ts: r.ts, orig: { src: r.orig.src, dport: r.orig.dport } };
    });
    expect(
      replayed.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(want);
    const bad = await runNode([cli, 'graph', 'check', 'conntrack() -> match(orig.nope == 1)']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/no record reaching it has a field "orig.nope"/);
    const good = await runNode([cli, 'graph', 'check', 'conntrack(events=[new]) ->  match(proto==tcp)']);
    expect(good.out.trim()).toBe('conntrack(events=[new]) -> match(proto==tcp)');
  });
});
