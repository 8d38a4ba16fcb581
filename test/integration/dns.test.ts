import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Flowgrab } from '../../src/flow/flowgrab.js';
import type { DnsRecord } from '../../src/sources/dns/record.js';
import { dns } from '../../src/sources/dns/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { sourcesTornDown, teardownsPending } from '../../src/sources/teardown.js';
import { createHomeNetwork, type HomeNetwork, waitFor } from '../../src/testing/lab/index.js';

const cli = join(import.meta.dirname, '../../dist/bin/flowgrab.js');
let home: HomeNetwork;

beforeAll(async () => {
  home = await createHomeNetwork();
});
afterAll(async () => {
  await sourcesTornDown();
  await home?.close();
});

const tables = async () => (await home.router.exec(['nft', 'list', 'tables'])).stdout;

/** Collects records until `until` holds (bounded), then unsubscribes and waits for the rules to go. */
async function capture(
  run: () => Promise<unknown>,
  until: (r: DnsRecord[]) => boolean,
  opts: Parameters<typeof dns>[0] = {},
) {
  const recs: DnsRecord[] = [];
  const notices: SourceNotice[] = [];
  let ready: Promise<void> | undefined;
  const sub = dns({
    netns: home.router.name,
    notices: { next: (n) => notices.push(n) },
    ready: (p) => (ready = p),
    ...opts,
  }).subscribe((r) => recs.push(r));
  try {
    if (!ready) throw new Error('the dns source gave no readiness signal');
    await ready;
    // Ready means capturing: the group is bound and the logging rules are in place now, not soon.
    expect(await tables()).toMatch(/flowgrab_dns_g/);
    await run();
    await waitFor(() => until(recs), { timeoutMs: 10_000, what: 'dns records' }).catch((err) => {
      throw new Error(`${(err as Error).message}; got ${recs.length} records`, { cause: err });
    });
  } finally {
    sub.unsubscribe();
    await sourcesTornDown();
  }
  return { recs, notices };
}

describe('dns source on the home network', () => {
  it('sees every query and answer from every client: A, AAAA, a CNAME chain, NXDOMAIN, over UDP and TCP, IPv4 and IPv6', async () => {
    const asks: [string, string, string[]][] = [];
    const { recs } = await capture(
      async () => {
        for (const c of home.clients) {
          for (const [server, tcp] of [
            [home.routerLan.ipv4, false],
            [home.routerLan.ipv4, true],
            [home.routerLan.ipv6, false],
          ] as const) {
            for (const [name, type] of [
              ['www.shop.test', 'A'],
              ['www.shop.test', 'AAAA'],
              ['nope.test', 'A'],
            ]) {
              const out = await c.ns.exec([
                'dig',
                '+short',
                // One try (a retry would be a 28th query), with room for a busy machine.
                '+time=5',
                '+tries=1',
                ...(tcp ? ['+tcp'] : []),
                `@${server}`,
                name,
                type,
              ]);
              asks.push([
                `${c.name}|${server}|${tcp ? 'tcp' : 'udp'}|${name}|${type}`,
                c.ipv4,
                out.stdout.trim().split('\n'),
              ]);
            }
          }
        }
      },
      (r) => r.filter((x) => x.kind === 'response').length >= 27,
    );
    const responses = recs.filter((r) => r.kind === 'response' && !r.error);
    const queries = recs.filter((r) => r.kind === 'query');
    expect(queries).toHaveLength(27);
    expect(responses).toHaveLength(27);
    for (const c of home.clients) {
      const mine = responses.filter((r) => r.client === c.ipv4 || r.client === c.ipv6);
      expect(mine).toHaveLength(9);
      const chainA = mine.filter((r) => r.qname === 'www.shop.test' && r.qtype === 'A');
      expect(chainA.map((r) => r.transport).sort()).toEqual(['tcp', 'udp', 'udp']);
      for (const r of chainA) {
        expect(r.resolved).toEqual([
          { name: 'www.shop.test', ip: home.server.ipv4, ttl: 60, via: ['cdn.shop.test', 'server.wan.test'] },
        ]);
        expect(r.answers.map((a) => `${a.type} ${a.data} ${a.ttl}`)).toEqual([
          'CNAME cdn.shop.test 60',
          'CNAME server.wan.test 60',
          `A ${home.server.ipv4} 60`,
        ]);
        expect(r).toMatchObject({ rcode: 'NOERROR', hook: 'output', serverPort: 53 });
        expect(r.rtt).toBeGreaterThanOrEqual(0);
      }
      expect(mine.filter((r) => r.qtype === 'AAAA').every((r) => r.resolved[0]?.ip === home.server.ipv6)).toBe(true);
      expect(mine.filter((r) => r.qname === 'nope.test').map((r) => r.rcode)).toEqual([
        'NXDOMAIN',
        'NXDOMAIN',
        'NXDOMAIN',
      ]);
      expect(mine.filter((r) => r.family === 'ipv6')).toHaveLength(3);
    }
    // What dig printed is what the records resolved.
    for (const [key, , printed] of asks.filter(([k]) => k.endsWith('www.shop.test|A'))) {
      expect(printed.at(-1)).toBe(home.server.ipv4);
      expect(key).toBeTruthy();
    }
    expect(queries.every((q) => q.hook === 'input')).toBe(true);
  });

  it('sees a LAN client using an outside resolver (the forward path), before NAT', async () => {
    const resolver = home.wan.spawn([
      'dnsmasq',
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--user=root',
      '--bind-interfaces',
      `--listen-address=${home.server.ipv4}`,
      '--local-ttl=30',
      '--host-record=outside.example,203.0.113.7',
      '--pid-file=',
      '--log-facility=/dev/null',
    ]);
    try {
      const c = home.clients[0];
      const { recs } = await capture(
        async () => {
          await waitFor(
            async () =>
              (
                await c.ns.exec(['dig', '+short', '+time=1', '+tries=1', `@${home.server.ipv4}`, 'outside.example'], {
                  allowFail: true,
                })
              ).stdout.includes('203.0.113.7'),
            { timeoutMs: 5000 },
          );
        },
        (r) => r.some((x) => x.kind === 'response' && x.qname === 'outside.example'),
      );
      const fwd = recs.filter((r) => r.qname === 'outside.example');
      expect(fwd.every((r) => r.hook === 'forward' && r.client === c.ipv4 && r.server === home.server.ipv4)).toBe(true);
      expect(fwd.find((r) => r.kind === 'response')?.resolved).toEqual([
        { name: 'outside.example', ip: '203.0.113.7', ttl: 30, via: [] },
      ]);
    } finally {
      resolver.kill();
    }
  });

  it('flags garbage sent to port 53 and keeps working', async () => {
    const c = home.clients[1];
    const { recs } = await capture(
      async () => {
        await c.ns.exec(['sh', '-c', `printf 'not dns at all' | socat -u - UDP:${home.routerLan.ipv4}:53`]);
        await c.ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'server.wan.test', 'A']);
      },
      (r) => r.some((x) => x.kind === 'response' && x.qname === 'server.wan.test'),
    );
    const bad = recs.find((r) => r.error);
    expect(bad).toMatchObject({
      kind: 'query',
      client: c.ipv4,
      transport: 'udp',
      // 'not dns at all': its header claims 25 710 questions in 14 bytes.
      error: 'bad-count',
      errorMessage: expect.stringMatching(/not a DNS message/),
    });
    expect(recs.some((r) => r.kind === 'response' && r.resolved[0]?.ip === home.server.ipv4)).toBe(true);
  });

  it('turns the issue 14 denial-of-service packets into bad-count records, and keeps working', async () => {
    const c = home.clients[1];
    // printf octal escapes (dash has no \x): the 23-byte 196 350-record packet and the all-0xffff header.
    const octal = (hex: string) =>
      [...Buffer.from(hex, 'hex')].map((x) => `\\${x.toString(8).padStart(3, '0')}`).join('');
    const send = (hex: string) =>
      c.ns.exec(['sh', '-c', `printf '${octal(hex)}' | socat -u - UDP:${home.routerLan.ipv4}:53`]);
    const { recs } = await capture(
      async () => {
        await send('0a0081800000ffffffffff0000001000010000003cffff');
        await send('12348180ffffffffffffffff');
        await c.ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'server.wan.test', 'A']);
      },
      (r) => r.some((x) => x.kind === 'response' && x.qname === 'server.wan.test'),
    );
    const bad = recs.filter((r) => r.error);
    expect(bad.map((r) => [r.error, r.id, r.client, r.answers.length])).toEqual([
      ['bad-count', 0x0a00, c.ipv4, 0],
      ['bad-count', 0x1234, c.ipv4, 0],
    ]);
    expect(recs.some((r) => r.kind === 'response' && r.resolved[0]?.ip === home.server.ipv4)).toBe(true);
  });

  it('counts an overrun exactly (kernel sequence gaps) and survives it', async () => {
    const c = home.clients[2];
    const file = join(home.dir, 'burst.txt');
    const n = 300;
    writeFileSync(file, Array.from({ length: n }, (_, i) => `@${home.routerLan.ipv4} h${i}.burst.test A\n`).join(''));
    const { recs, notices } = await capture(
      async () => {
        // Blocking: our event loop stops while 2·n packets are logged into a tiny socket buffer.
        execFileSync('ip', ['netns', 'exec', c.ns.name, 'dig', '+time=2', '+tries=1', '-f', file], { stdio: 'ignore' });
        // A loss shows as a sequence gap when the next packet arrives: send one after the burst.
        await c.ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'final.burst.test', 'A']);
      },
      (r) => r.some((x) => x.kind === 'response' && x.qname === 'final.burst.test'),
      // The main-thread reader: blocking the event loop stops it, so the tiny buffer overruns for certain
      // (the batched reader's worker would go on draining it, mostly in time).
      { recvBufferBytes: 4096, batchedReceive: false },
    );
    const lost = notices
      .filter((x) => x.kind === 'loss' && x.where === 'kernel')
      .reduce((s, x) => s + (x.count ?? 0), 0);
    expect(lost).toBeGreaterThan(0);
    // Every logged packet is either a record or counted as lost; nothing else.
    const burst = recs.filter((r) => r.qname.endsWith('.burst.test'));
    expect(burst.length + lost).toBe(2 * (n + 1));
  });

  it('Flowgrab.close() resolves once its dns rules are gone, so a process may exit right after', async () => {
    const fg = new Flowgrab();
    const flow = fg.create();
    flow.populate(`dns(netns=${home.router.name}, group=78)`);
    await flow.instantiate();
    await flow.activate(); // capturing: the table is in place
    expect(await tables()).toMatch(/flowgrab_dns_g78/);
    await fg.close();
    // Nothing is still being removed (an nft child would outlive a process that exits now) ...
    expect(teardownsPending()).toBe(0);
    // ... and the table is gone.
    expect(await tables()).not.toMatch(/flowgrab_dns_g78/);
  });

  it('removes its rules after a clean stop and replaces stale ones left by a killed process without duplicating', async () => {
    expect(await tables()).not.toMatch(/flowgrab_dns/);
    // A child process subscribes, then dies by SIGKILL: its table stays behind, owned by a dead pid.
    const child = spawn(process.execPath, [cli, 'dns', '--netns', home.router.name, '--group', '77'], {
      stdio: 'ignore',
    });
    await waitFor(async () => (await tables()).includes('flowgrab_dns_g77'), {
      timeoutMs: 10_000,
      what: 'child rules',
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await tables()).toMatch(/flowgrab_dns_g77/);
    const recs: DnsRecord[] = [];
    const sub = dns({ netns: home.router.name, group: 77 }).subscribe((r) => recs.push(r));
    await waitFor(
      async () =>
        (await home.router.exec(['nft', 'list', 'table', 'inet', 'flowgrab_dns_g77'])).stdout.includes(
          `pid=${process.pid} `,
        ),
      {
        timeoutMs: 5000,
        what: 'table taken over',
      },
    );
    const listing = (await home.router.exec(['nft', 'list', 'table', 'inet', 'flowgrab_dns_g77'])).stdout;
    expect(listing.match(/log prefix "flowgrab-dns" group 77/g)).toHaveLength(6); // 2 rules × 3 hooks, not 12
    await home.clients[0].ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'router.lan', 'A']);
    await waitFor(() => recs.some((r) => r.kind === 'response'), { timeoutMs: 5000 });
    sub.unsubscribe();
    await sourcesTornDown();
    expect(await tables()).not.toMatch(/flowgrab_dns/);
  });

  it('CLI: flowgrab dns --json prints records and stops at --count', async () => {
    const out = spawn(process.execPath, [cli, 'dns', '--netns', home.router.name, '--json', '--count', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    out.stdout.on('data', (d) => (text += d));
    try {
      await waitFor(async () => (await tables()).includes('flowgrab_dns_g53'), {
        timeoutMs: 10_000,
        what: 'cli rules',
      });
      await home.clients[0].ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'www.shop.test', 'A']);
      await waitFor(() => out.exitCode !== null, { timeoutMs: 30_000, what: 'flowgrab dns to stop at --count' });
    } finally {
      // A failed run must not leave the CLI behind (its namespace goes with the lab).
      if (out.exitCode === null && out.signalCode === null) out.kill('SIGKILL');
    }
    const code = out.exitCode;
    expect(code).toBe(0);
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DnsRecord);
    expect(lines.map((r) => r.kind)).toEqual(['query', 'response']);
    expect(lines[1].resolved[0].ip).toBe(home.server.ipv4);
    await waitFor(async () => !(await tables()).includes('flowgrab_dns'), {
      timeoutMs: 5000,
      what: 'cli rules removed',
    });
  });
});
