import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { policyAuthorizer } from '../../src/auth/flowgrab.js';
import { parsePolicy } from '../../src/auth/load.js';
import { Flowgrab } from '../../src/flow/flowgrab.js';
import { openNativeTransport } from '../../src/netlink/native.js';
import type { TransportOptions } from '../../src/netlink/transport.js';
import { IptablesQueueRules, sweepStaleQueueChains } from '../../src/sources/firewall/iptables.js';
import type { NfqueueOptionsInput } from '../../src/sources/nfqueue/options.js';
import type { QueuedPacket } from '../../src/sources/nfqueue/queued.js';
import { nfqueue } from '../../src/sources/nfqueue/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { sourcesTornDown } from '../../src/sources/teardown.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';

const cliModule = join(import.meta.dirname, '../../dist/src/cli/nfqueue.js');
const SRV = { v4: '10.234.0.1', v6: 'fd00:234::1' };
let lab: Lab;
let cli: Netns;
let srv: Netns;

beforeAll(async () => {
  lab = new Lab();
  [cli, srv] = await Promise.all([lab.netns('c'), lab.netns('s')]);
  await lab.veth(cli, 'fgq-c0', srv, 'fgq-s0', {
    addrsA: ['10.234.0.2/24', 'fd00:234::2/64'],
    addrsB: ['10.234.0.1/24', 'fd00:234::1/64'],
  });
  // The first IPv6 neighbour solicitation after link-up may go unanswered: wait until both families answer.
  for (const dst of [SRV.v4, SRV.v6])
    await waitFor(async () => (await ping(dst, 1)) === 1, { timeoutMs: 10_000, what: `ping ${dst}` });
});

afterAll(async () => {
  await sourcesTornDown();
  await lab?.close();
});

const children: ChildProcess[] = [];
const subscriptions: { unsubscribe(): void }[] = [];
// A failed test must leave neither a child nor an open queue behind for the next one.
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  await sourcesTornDown();
  await sweepStaleQueueChains(cli.name);
});

/** Echo replies received by `count` pings to `dst` from the client namespace. */
async function ping(dst: string, count = 1, extra: string[] = []): Promise<number> {
  const r = await cli.exec(
    ['ping', dst.includes(':') ? '-6' : '-4', '-n', '-c', String(count), '-W', '1', ...extra, dst],
    {
      allowFail: true,
    },
  );
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? -1);
}

const rules = async (ns: Netns, tool: 'iptables' | 'ip6tables') => (await ns.exec([tool, '-S'])).stdout;
const jumps = (text: string, q: number) =>
  text.split('\n').filter((l) => l.startsWith('-A ') && l.endsWith(`-j FLOWGRAB-Q${q}`));

/** Subscribes to a queue in the client namespace, `decide` answering each packet; resolves once bound with rules in place. */
async function queue(opts: Partial<NfqueueOptionsInput> & { queue: number }, decide?: (p: QueuedPacket) => void) {
  const got: QueuedPacket[] = [];
  const notices: SourceNotice[] = [];
  const src = nfqueue({
    netns: cli.name,
    rules: { chains: ['OUTPUT'] },
    notices: { next: (n) => notices.push(n) },
    ...opts,
  });
  const sub = src.subscribe((p) => {
    got.push(p);
    decide?.(p);
  });
  subscriptions.push(sub);
  await src.ready();
  return {
    src,
    got,
    notices,
    stop: async () => {
      sub.unsubscribe();
      await sourcesTornDown();
    },
  };
}

const isEcho = (p: QueuedPacket) => p.icmp?.type === 8 || p.icmp?.type === 128;

/** `flowgrab nfqueue …` in a child process (the command module run directly; flowgrab.ts wires it later). */
function cliChild(args: string[], stdio: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  const script = `const { nfqueueCommand } = await import(${JSON.stringify(cliModule)}); await nfqueueCommand().parseAsync(process.argv.slice(1), { from: 'user' });`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {
    stdio: ['ignore', stdio, stdio],
  });
  children.push(c);
  return c;
}

describe('nfqueue source on the real kernel', () => {
  it("a scoped user's graph verdict decides only packets inside the scope: the rest are accepted unseen", async () => {
    const policy = parsePolicy(
      JSON.stringify({
        version: 1,
        principals: [
          {
            who: { uid: 6101 },
            sources: ['nfqueue'],
            filters: ['*'],
            capabilities: ['verdicts', 'netns'],
            scope: [`${SRV.v4}/32`],
          },
        ],
      }),
    );
    // Everything the client namespace sends goes to queue 21 (the rules flowgrab installs and removes whole).
    const queued = await IptablesQueueRules.install({ queue: 21, chains: ['OUTPUT'], netns: cli.name });
    const fg = new Flowgrab({ authorize: policyAuthorizer(policy, { uid: 6101, gid: 6101 }) });
    try {
      const f = fg.create().populate(`nfqueue(queue=21, verdict=drop, netns=${cli.name})`);
      await f.instantiate();
      expect(f.graph).toContain(`scope=[${SRV.v4}/32]) -> scope(`);
      const seen: { ip?: { src?: string; dst?: string } }[] = [];
      f.records$.subscribe((r) => seen.push(r as never));
      await f.activate();
      // Outside the scope (loopback): accepted, neither dropped nor shown. Inside: the graph's drop.
      expect(await ping('127.0.0.1', 2)).toBe(2);
      expect(await ping(SRV.v4, 1)).toBe(0);
      await waitFor(() => seen.length > 0, { what: 'the in-scope packet' });
      expect(seen.every((r) => r.ip?.dst === SRV.v4 || r.ip?.src === SRV.v4)).toBe(true);
    } finally {
      await fg.close();
      await queued.remove();
    }
  });

  it('a drop verdict blocks a ping and an accept verdict lets it through, IPv4 and IPv6', async () => {
    let mode: 'accept' | 'drop' = 'drop';
    const q = await queue({ queue: 3 }, (p) => p.verdict(isEcho(p) ? mode : 'accept'));
    expect(jumps(await rules(cli, 'iptables'), 3)).toHaveLength(1);
    expect(jumps(await rules(cli, 'ip6tables'), 3)).toHaveLength(1);
    expect(await ping(SRV.v4)).toBe(0);
    expect(await ping(SRV.v6)).toBe(0);
    mode = 'accept';
    expect(await ping(SRV.v4)).toBe(1);
    expect(await ping(SRV.v6)).toBe(1);
    const echoes = q.got.filter(isEcho);
    expect(echoes.map((p) => `${p.family} ${p.ip?.dst}`)).toEqual([
      `ipv4 ${SRV.v4}`,
      `ipv6 ${SRV.v6}`,
      `ipv4 ${SRV.v4}`,
      `ipv6 ${SRV.v6}`,
    ]);
    for (const p of echoes) {
      expect(p).toMatchObject({ queue: 3, hook: 'output', outdevName: 'fgq-c0', uid: 0, mark: 0 });
      expect(p.ip?.src).toBe(p.family === 'ipv4' ? '10.234.0.2' : 'fd00:234::2');
    }
    // Packet ids count up per queue without gaps: nothing was lost.
    expect(q.got.map((p) => p.packetId)).toEqual(q.got.map((_, i) => i + 1));
    expect(q.notices.filter((n) => n.kind === 'loss')).toEqual([]);
    await q.stop();
  });

  it('close then reopen with the default (batched) reader: each new reader binds the queue at once and decides its packets', async () => {
    // The real transport, watched: which reader the default options ask for.
    const asked: TransportOptions[] = [];
    const transport = (o: TransportOptions) => {
      asked.push(o);
      return openNativeTransport(o);
    };
    const match = { chains: ['OUTPUT' as const], match: ['-p', 'icmp'], families: ['ipv4' as const] };
    for (let i = 0; i < 3; i++) {
      const q = await queue({ queue: 16, rules: match, transport }, (p) => p.verdict('accept'));
      expect(asked.at(-1)?.batched).toBe(true);
      expect(await ping(SRV.v4)).toBe(1);
      expect(q.got.filter(isEcho)).toHaveLength(1);
      await q.stop();
    }
    expect(asked).toHaveLength(3);
  });

  it('a mark given with the verdict is what a later rule sees', async () => {
    await cli.exec([
      'nft',
      'add table inet fgmark; add chain inet fgmark o { type filter hook output priority 10; }; add rule inet fgmark o meta mark 0x20 counter',
    ]);
    try {
      const q = await queue(
        { queue: 4, rules: { chains: ['OUTPUT'], match: ['-p', 'icmp'], families: ['ipv4'] } },
        (p) => p.verdict('accept', isEcho(p) ? { mark: 0x20 } : {}),
      );
      expect(await ping(SRV.v4, 2, ['-i', '0.2'])).toBe(2);
      await q.stop();
      const counter = /counter packets (\d+)/.exec((await cli.exec(['nft', 'list', 'table', 'inet', 'fgmark'])).stdout);
      expect(Number(counter?.[1])).toBe(2);
      expect(q.got.filter(isEcho).map((p) => p.mark)).toEqual([0, 0]); // unmarked when queued
      expect(await rules(cli, 'ip6tables')).not.toMatch(/FLOWGRAB/); // ipv4 only
    } finally {
      await cli.exec(['nft', 'delete', 'table', 'inet', 'fgmark']);
    }
  });

  it('fail-open: a reader that gives no verdicts holds only maxLen packets; the rest flow', async () => {
    const q = await queue({
      queue: 5,
      maxLen: 2,
      verdictTimeoutMs: 60_000,
      rules: { chains: ['OUTPUT'], match: ['-p', 'icmp'], families: ['ipv4'] },
    });
    expect(await ping(SRV.v4, 5, ['-i', '0.2'])).toBe(3); // echo requests 3–5 answered
    expect(q.got.map((p) => p.icmp?.type)).toEqual([8, 8]);
    expect(q.src.pending).toBe(2);
    expect(
      q.notices.some((n) => /is full \(2 packets wait for verdicts\).*pass without a verdict/.test(n.message)),
    ).toBe(true);
    await q.stop();
  });

  it('fail-open: a blocked reader whose socket overflows leaves traffic flowing and counts the overflow exactly', async () => {
    await cli.exec([
      'nft',
      'add table inet fgin; add chain inet fgin i { type filter hook input priority 0; }; add rule inet fgin i udp dport 9 counter',
    ]);
    try {
      const q = await queue(
        {
          queue: 6,
          maxLen: 10_000,
          recvBufferBytes: 4096,
          rules: { chains: ['OUTPUT'], match: ['-p', 'udp', '--dport', '9'], families: ['ipv4'] },
        },
        (p) => p.verdict('accept'),
      );
      const n = 2000;
      floodUdpSync(cli.name, { count: n, base: 1 }); // blocks our event loop: the socket buffer fills
      const lost = () => q.notices.filter((x) => x.kind === 'loss').reduce((s, x) => s + (x.count ?? 0), 0);
      await waitFor(() => q.got.length + lost() >= n, { timeoutMs: 5000, what: 'packets and loss to add up' });
      expect(lost()).toBeGreaterThan(0);
      expect(q.got.length + lost()).toBe(n);
      const counter = async () =>
        Number(/counter packets (\d+)/.exec((await cli.exec(['nft', 'list', 'table', 'inet', 'fgin'])).stdout)?.[1]);
      await waitFor(async () => (await counter()) === n, { timeoutMs: 5000, what: `all ${n} datagrams delivered` });
      await q.stop();
    } finally {
      await cli.exec(['nft', 'delete', 'table', 'inet', 'fgin']);
    }
  });

  it('a clean stop gives packets still waiting the default verdict before unbinding (the kernel would drop them)', async () => {
    const q = await queue({
      queue: 12,
      verdictTimeoutMs: 60_000,
      rules: { chains: ['OUTPUT'], match: ['-p', 'icmp'], families: ['ipv4'] },
    });
    const replies = ping(SRV.v4, 1, ['-W', '3']);
    await waitFor(() => q.got.length === 1, { timeoutMs: 3000, what: 'the echo request to be queued' });
    expect(q.src.pending).toBe(1);
    await q.stop(); // nobody decided it: default accept, then unbind
    expect(await replies).toBe(1);
  });

  it('leaves no rules, chains or tables after a clean stop', async () => {
    const before = (await cli.exec(['nft', 'list', 'ruleset'])).stdout;
    const q = await queue({ queue: 7, rules: { chains: ['OUTPUT', 'INPUT'] } }, (p) => p.verdict('accept'));
    const v4 = await rules(cli, 'iptables');
    expect(v4).toMatch(
      new RegExp(
        `-A FLOWGRAB-Q7 -m comment --comment "flowgrab pid=${process.pid} start=\\d+ pidns=\\d+" -j NFQUEUE --queue-num 7 --queue-bypass`,
      ),
    );
    expect(
      jumps(v4, 7)
        .map((l) => l.split(' ')[1])
        .sort(),
    ).toEqual(['INPUT', 'OUTPUT']);
    expect(await ping(SRV.v6)).toBe(1);
    await q.stop();
    for (const tool of ['iptables', 'ip6tables'] as const)
      expect(await rules(cli, tool)).not.toMatch(/FLOWGRAB|NFQUEUE/);
    const after = (await cli.exec(['nft', 'list', 'ruleset'])).stdout;
    expect(after).not.toMatch(/FLOWGRAB|queue num/);
    expect(after).toBe(before); // even the filter tables iptables-nft made for us are gone
    expect(await ping(SRV.v4)).toBe(1);
  });

  it('after kill -9 of the process holding the queue, a restart replaces its stale chain: nothing duplicated', async () => {
    const child = cliChild(['--queue', '8', '--netns', cli.name, '--rule', 'OUTPUT']);
    await waitFor(async () => (await rules(cli, 'ip6tables')).includes(`pid=${child.pid} `), {
      timeoutMs: 10_000,
      what: 'child rules',
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Its rules stay behind, owned by a dead process; with --queue-bypass and no reader, traffic flows meanwhile.
    expect(jumps(await rules(cli, 'iptables'), 8)).toHaveLength(1);
    expect(await ping(SRV.v4)).toBe(1);
    const q = await queue({ queue: 8 }, (p) => p.verdict('accept'));
    for (const tool of ['iptables', 'ip6tables'] as const) {
      const text = await rules(cli, tool);
      expect(jumps(text, 8)).toHaveLength(1);
      expect(text.match(/-j NFQUEUE --queue-num 8/g)).toHaveLength(1);
      expect(text).not.toContain(`pid=${child.pid} `);
      expect(text).toContain(`pid=${process.pid} `);
    }
    expect(await ping(SRV.v6)).toBe(1);
    expect(q.got.some((p) => p.family === 'ipv6' && isEcho(p))).toBe(true);
    await q.stop();
    for (const tool of ['iptables', 'ip6tables'] as const) expect(await rules(cli, tool)).not.toMatch(/FLOWGRAB/);
  });

  it('a queue held by a live process is refused with FG_ERR_BUSY (bind and rules); its stale leftovers can be swept', async () => {
    const child = cliChild(['--queue', '9', '--netns', cli.name, '--rule', 'OUTPUT', '--family', 'ipv4']);
    await waitFor(async () => (await rules(cli, 'iptables')).includes(`pid=${child.pid} `), {
      timeoutMs: 10_000,
      what: 'child rules',
    });
    // The readiness signal settles with the bind's outcome (bounded by the request's own timeout).
    let ready: Promise<void> | undefined;
    const src = nfqueue({ queue: 9, netns: cli.name, interfaceNames: false, ready: (p) => (ready = p) });
    const sub = src.subscribe({ error: () => {} });
    const err = await (ready ?? Promise.reject(new Error('no readiness signal'))).then(
      () => new Error('bound a queue another process holds'),
      (e: Error) => e,
    );
    sub.unsubscribe();
    expect(err).toMatchObject({
      code: 'FG_ERR_BUSY',
      message: expect.stringMatching(
        new RegExp(`NFQUEUE queue 9 is already bound by another reader in ${cli.name} \\(netlink port \\d+\\)`),
      ),
    });
    await expect(IptablesQueueRules.install({ queue: 9, chains: ['OUTPUT'], netns: cli.name })).rejects.toMatchObject({
      code: 'FG_ERR_BUSY',
      message: expect.stringMatching(
        new RegExp(`chain FLOWGRAB-Q9 \\(NFQUEUE queue 9\\) belongs to running process ${child.pid}`),
      ),
    });
    expect(await sweepStaleQueueChains(cli.name)).toEqual([]); // alive: not stale
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await sweepStaleQueueChains(cli.name)).toEqual(['ipv4 FLOWGRAB-Q9']);
    expect(await rules(cli, 'iptables')).not.toMatch(/FLOWGRAB/);
  });

  it('CLI: flowgrab nfqueue --json prints packets, accepts them, stops at --count and cleans up', async () => {
    const child = cliChild(
      [
        '--queue',
        '10',
        '--netns',
        cli.name,
        '--rule',
        'OUTPUT',
        '--match',
        '-p icmp',
        '--family',
        'ipv4',
        '--json',
        '--count',
        '2',
      ],
      'pipe',
    );
    let text = '';
    child.stdout?.on('data', (d) => (text += d));
    const exited = new Promise((r) => child.once('exit', r));
    await waitFor(async () => (await rules(cli, 'iptables')).includes('FLOWGRAB-Q10'), {
      timeoutMs: 10_000,
      what: 'cli rules',
    });
    expect(await ping(SRV.v4, 2, ['-i', '0.2'])).toBe(2);
    expect(await exited).toBe(0);
    const recs = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.map((r) => [r.packetId, r.icmp.type, r.ip.dst])).toEqual([
      [1, 8, SRV.v4],
      [2, 8, SRV.v4],
    ]);
    expect(recs[0].payload).toMatch(/^45[0-9a-f]{166}$/); // the 84-byte IPv4 echo request, as hex
    expect(await rules(cli, 'iptables')).not.toMatch(/FLOWGRAB/);
  });
});
