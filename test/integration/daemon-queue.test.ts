/**
 * NFQUEUE sharing through flowgrabd, with real users: the daemon owns one
 * queue in a client namespace whose mangle rules mark UDP by port (7001 → 1,
 * 7002 → 2, 7003 → 3) and ICMP echo requests with 0x10. Each user's client
 * takes the packets of its mark only; verdicts on packets it was not given
 * are refused; unclaimed packets and those of a client that dies or misses
 * its timeout get the default verdict (accept). This daemon identifies its
 * clients by unix_diag alone.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../../src/auth/load.js';
import type { PolicyInput } from '../../src/auth/policy.js';
import { RemoteFlowgrab } from '../../src/daemon/client.js';
import { metricsRegistry } from '../../src/daemon/metrics.js';
import { Daemon } from '../../src/daemon/server.js';
import { sweepStaleQueueChains } from '../../src/sources/firewall/iptables.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';
import {
  asUser,
  createUser,
  DIST,
  FIXTURES,
  FLOWGRAB,
  LineProcess,
  removeUser,
  runNodeAs,
  SpawnedDaemon,
  sharedTempDir,
  type TestUser,
  userEnv,
  writePolicy,
} from '../helpers/daemon.js';

const SRV = { v4: '10.236.0.1', v6: 'fd00:236::1' };
const QUEUE = 300 + Math.floor(Math.random() * 600);
let lab: Lab;
let cli: Netns;
let srv: Netns;
let A: TestUser;
let B: TestUser;
let C: TestUser;
let D: TestUser;
let dir: string;
let socket: string;
let policyFile: string;
let daemon: Daemon;
const logs: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
const procs: LineProcess[] = [];

interface Line {
  hello?: { uid: number };
  registered?: { reg: number; mark: string; timeoutMs: number };
  error?: { code: string; message: string };
  stage?: string;
  packet?: { id: number; mark: number; family: string; proto: number; dst: string; dport?: number };
  verdict?: { id: number; ok: boolean; reason?: string };
  notice?: { kind: string; message: string; count?: number };
  tried?: { accepted: number; refused: { packetId: number; reason: string }[] };
  end?: { error?: { code: string; message: string }; complete?: boolean };
}

function policy(aVerdicts = true): PolicyInput {
  return {
    version: 1,
    principals: [
      { who: { user: A.name }, sources: ['conntrack'], verdicts: aVerdicts },
      { who: { uid: B.uid }, verdicts: true },
      { who: { user: C.name }, sources: ['conntrack'] },
    ],
  };
}

beforeAll(async () => {
  [A, B, C, D] = await Promise.all([createUser('a'), createUser('b'), createUser('c'), createUser('d')]);
  lab = new Lab();
  [cli, srv] = await Promise.all([lab.netns('qc'), lab.netns('qs')]);
  await lab.veth(cli, 'fgdq-c0', srv, 'fgdq-s0', {
    addrsA: ['10.236.0.2/24', 'fd00:236::2/64'],
    addrsB: ['10.236.0.1/24', 'fd00:236::1/64'],
  });
  for (const dst of [SRV.v4, SRV.v6])
    await waitFor(async () => (await ping(dst)) === 1, { timeoutMs: 10_000, what: `ping ${dst}` });
  for (const tool of ['iptables', 'ip6tables']) {
    for (const [port, mark] of [
      [7001, 1],
      [7002, 2],
      [7003, 3],
    ])
      await cli.exec([
        tool,
        '-t',
        'mangle',
        '-A',
        'OUTPUT',
        '-p',
        'udp',
        '--dport',
        String(port),
        '-j',
        'MARK',
        '--set-mark',
        String(mark),
      ]);
    const echo =
      tool === 'iptables'
        ? ['-p', 'icmp', '--icmp-type', 'echo-request']
        : ['-p', 'ipv6-icmp', '--icmpv6-type', 'echo-request'];
    await cli.exec([tool, '-t', 'mangle', '-A', 'OUTPUT', ...echo, '-j', 'MARK', '--set-mark', '0x10']);
  }
  dir = sharedTempDir('fg-dq-');
  socket = join(dir, 'd.sock');
  policyFile = join(dir, 'policy.json');
  writePolicy(policyFile, policy());
  daemon = new Daemon({
    socket,
    policy: () => loadPolicy(policyFile),
    log: (level, msg, fields = {}) => logs.push({ level, msg, fields }),
    queue: { queue: QUEUE, netns: cli.name, rules: { chains: ['OUTPUT'] }, verdictTimeoutMs: 5000 },
    // This daemon knows its clients through unix_diag only (the others use SO_PEERCRED): the users' rights hold either way.
    peerIdentity: 'sockdiag',
  });
  await daemon.listen();
}, 60_000);

afterAll(async () => {
  for (const p of procs) p.kill();
  await daemon?.close();
  await sweepStaleQueueChains(cli.name).catch(() => {});
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await Promise.all([A, B, C, D].map(removeUser));
}, 60_000);

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop();
  // Each test starts with no registration left by the last one.
  await waitFor(() => (daemon.mux?.status().registrations as unknown[]).length === 0, {
    timeoutMs: 5000,
    what: 'registrations to go',
  });
});

async function ping(dst: string, waitS = 1): Promise<number> {
  const r = await cli.exec(['ping', dst.includes(':') ? '-6' : '-4', '-n', '-c', '1', '-W', String(waitS), dst], {
    allowFail: true,
  });
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? -1);
}

/** `n` datagrams from the client namespace to `port` on the server (v4 and v6). */
async function send(port: number, n: number): Promise<void> {
  const script = `const d=require('node:dgram');const [p,n,a4,a6]=process.argv.slice(1);
    (async()=>{for(const [t,a] of [['udp4',a4],['udp6',a6]]){const s=d.createSocket(t);
    for(let i=0;i<Number(n);i++)await new Promise(r=>s.send('x',Number(p),a,r));s.close();}})();`;
  await cli.exec([process.execPath, '-e', script, String(port), String(n), SRV.v4, SRV.v6]);
}

function client(user: TestUser | undefined, cfg: Record<string, unknown>): LineProcess {
  const [cmd, argv] = asUser(user, [join(FIXTURES, 'queue.mjs'), DIST, socket, JSON.stringify(cfg)]);
  const p = new LineProcess(cmd, argv, userEnv(user));
  procs.push(p);
  return p;
}

const lines = (p: LineProcess) => p.json<Line>();
const packets = (p: LineProcess) => lines(p).flatMap((l) => (l.packet ? [l.packet] : []));
const registered = (p: LineProcess) => p.waitJson<Line>((l) => !!l.registered || !!l.error, 10_000, 'registration');

describe('flowgrabd NFQUEUE sharing', () => {
  it('gives each client only the packets of its mark, IPv4 and IPv6; unclaimed ones are accepted', async () => {
    const a = client(A, { mark: 1, mode: 'accept' });
    const b = client(B, { mark: 2, mode: 'accept' });
    expect((await registered(a)).registered?.mark).toBe('0x1');
    expect((await registered(b)).registered?.mark).toBe('0x2');
    await Promise.all([send(7001, 3), send(7002, 2), send(7003, 4)]);
    await waitFor(() => packets(a).length >= 6 && packets(b).length >= 4, { timeoutMs: 10_000, what: 'packets' });
    await waitFor(() => lines(a).filter((l) => l.verdict?.ok).length === 6, { timeoutMs: 5000, what: 'verdicts' });
    expect(packets(a).map((p) => [p.mark, p.dport])).toEqual(Array(6).fill([1, 7001]));
    expect(packets(b).map((p) => [p.mark, p.dport])).toEqual(Array(4).fill([2, 7002]));
    expect(
      packets(a)
        .map((p) => p.family)
        .sort(),
    ).toEqual(['ipv4', 'ipv4', 'ipv4', 'ipv6', 'ipv6', 'ipv6']);
    expect(new Set(packets(a).map((p) => p.dst))).toEqual(new Set([SRV.v4, SRV.v6]));
    // Mark 3 and unmarked traffic (ping's echo replies, neighbour discovery) belong to nobody: accepted.
    expect(
      logs.find((l) => l.msg === 'client connected' && l.fields.uid === A.uid && l.fields.pid === a.pid)?.fields,
    ).toMatchObject({ user: A.name, via: 'sockdiag' });
    const st = daemon.mux!.stats;
    expect(st.unclaimed).toBeGreaterThanOrEqual(8);
    expect(await ping(SRV.v4, 3)).toBe(1);
    expect(await ping(SRV.v6, 3)).toBe(1);
    const status = await (await RemoteFlowgrab.connect(socket)).status();
    const nfqueue = status.nfqueue as { registrations: { uid: number; mark: string; verdicts: number }[] };
    expect(nfqueue.registrations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ uid: A.uid, mark: '0x1', verdicts: 6 }),
        expect.objectContaining({ uid: B.uid, mark: '0x2' }),
      ]),
    );
    const metrics = await metricsRegistry(daemon).metrics();
    expect(metrics).toMatch(/^flowgrabd_nfqueue_packets_total\{outcome="delivered"\} (\d+)$/m);
    expect(Number(/outcome="delivered"\} (\d+)/.exec(metrics)?.[1])).toBe(daemon.mux!.stats.delivered);
  });

  it('refuses a mark already taken (also through an overlapping mask), users without verdict rights, and users not in the policy', async () => {
    const a = client(A, { mark: 1, mode: 'accept' });
    expect((await registered(a)).registered).toBeDefined();
    // Another client's mark is never told: only that the claim overlaps what someone holds.
    for (const [cfg, shown] of [
      [{ mark: 1 }, '0x1'],
      [{ mark: 1, mask: 1 }, '0x1/0x1'],
      [{ mark: 0, mask: 0xfe }, '0x0/0xfe'],
    ] as const) {
      const b = client(B, { ...cfg, mode: 'accept' });
      const r = await registered(b);
      expect(r.error?.code, JSON.stringify(cfg)).toBe('FG_ERR_BUSY');
      expect(r.error?.message).toBe(`mark ${shown} is already taken by another client`);
    }
    // A claim outside the principal's ranges (every packet, not granted) is refused as such, before any overlap.
    const all = await registered(client(B, { mark: 0, mask: 0, mode: 'accept' }));
    expect(all.error?.code).toBe('FG_ERR_DENIED');
    expect(all.error?.message).toMatch(/claims every packet/);
    expect(all.error?.message).not.toMatch(/0x1\b/);
    const free = client(B, { mark: 2, mask: 3, mode: 'accept' });
    expect((await registered(free)).registered?.mark).toBe('0x2/0x3');
    const c = await registered(client(C, { mark: 5, mode: 'accept' }));
    expect(c.error).toMatchObject({ code: 'FG_ERR_DENIED', message: 'your policy does not allow NFQUEUE verdicts' });
    const d = await registered(client(D, { mark: 6, mode: 'accept' }));
    expect(d.error?.code).toBe('FG_ERR_DENIED');
    expect(d.error?.message).toMatch(/is not in the policy: denied/);
  });

  it('refuses a verdict on a packet delivered to someone else, and a new mark outside the registration', async () => {
    const a = client(A, { mark: 1, mode: 'hold', holdMs: 2500 });
    await registered(a);
    await send(7001, 2);
    await waitFor(() => packets(a).length === 4, { timeoutMs: 5000, what: "A's packets" });
    const ids = packets(a).map((p) => p.id);
    const b = client(B, { mark: 2, mode: 'accept', tryVerdicts: ids });
    const tried = await b.waitJson<Line>((l) => !!l.tried || !!l.error, 10_000, 'tried');
    expect(tried.tried?.accepted).toBe(0);
    expect(tried.tried?.refused.map((r) => r.packetId)).toEqual(ids);
    for (const r of tried.tried?.refused ?? []) expect(r.reason).toBe('that packet was not delivered to you');
    // B's drops were refused: A's own verdicts, given later, are the ones that count.
    await waitFor(() => lines(a).filter((l) => l.verdict).length === 4, { timeoutMs: 6000, what: "A's verdicts" });
    expect(lines(a).filter((l) => l.verdict?.ok)).toHaveLength(4);
    expect(logs.some((l) => l.msg === 'verdict refused' && l.fields.uid === B.uid)).toBe(true);

    await a.stop(); // mark 1 is free again once A's connection is gone
    await waitFor(() => !(daemon.mux?.status().registrations as { mark: string }[]).some((r) => r.mark === '0x1'), {
      timeoutMs: 5000,
      what: 'mark 1 to be released',
    });
    const m = client(A, { mark: 1, mode: 'accept', verdictMark: 2, timeoutMs: 300 });
    expect((await registered(m)).registered?.timeoutMs).toBe(300);
    await send(7001, 1);
    await waitFor(() => lines(m).filter((l) => l.verdict).length === 2, { timeoutMs: 5000, what: 'verdict answers' });
    for (const l of lines(m).filter((x) => x.verdict))
      expect(l.verdict?.reason).toMatch(/mark 0x2 is outside your registration 0x1/);
    // Refused verdicts leave the packets waiting: the registration's timeout decides them.
    const timeout = await m.waitJson<Line>((l) => l.notice?.kind === 'timeout', 5000, 'timeout notice');
    expect(timeout.notice?.message).toMatch(/got the default verdict \(accept\) after 300 ms/);
  });

  it("accepts a killed client's pending packets at once, before any timeout", async () => {
    const a = client(A, { mark: 0x10, mode: 'hold' });
    await registered(a);
    const pinging = ping(SRV.v4, 4); // waits up to 4 s; the verdict timeout is 5 s
    await waitFor(() => packets(a).length === 1, { timeoutMs: 5000, what: 'the echo request at A' });
    expect(packets(a)[0]).toMatchObject({ mark: 0x10, proto: 1 });
    a.kill('SIGKILL');
    expect(await pinging).toBe(1);
    expect(daemon.mux!.stats.defaulted).toBeGreaterThanOrEqual(1);
  });

  it('a client that misses its timeout has its packets accepted and is told', async () => {
    const a = client(A, { mark: 0x10, mode: 'hold', timeoutMs: 400 });
    await registered(a);
    expect(await ping(SRV.v6, 3)).toBe(1);
    const n = await a.waitJson<Line>((l) => l.notice?.kind === 'timeout', 5000, 'timeout notice');
    expect(n.notice?.count).toBe(1);
  });

  it('a policy reload that takes the verdict right away closes the registration, with the reason', async () => {
    const a = client(A, { mark: 1, mode: 'accept' });
    await registered(a);
    writePolicy(policyFile, policy(false));
    try {
      await daemon.reload();
      const end = await a.waitJson<Line>((l) => !!l.end, 5000, 'end');
      expect(end.end?.error?.message).toMatch(/closed the queue: the new policy does not allow NFQUEUE verdicts/);
    } finally {
      writePolicy(policyFile, policy());
      await daemon.reload();
    }
  });

  it('`flowgrab --daemon S nfqueue --mark` prints the packets of that mark and accepts them', async () => {
    const run = runNodeAs(B, [FLOWGRAB, '--daemon', socket, 'nfqueue', '--mark', '0x2', '--json', '--count', '2']);
    await waitFor(() => (daemon.mux?.status().registrations as unknown[]).length === 1, {
      timeoutMs: 10_000,
      what: 'the CLI to register',
    });
    await send(7002, 1);
    const r = await run;
    expect(r.code, r.err).toBe(0);
    const recs = r.out
      .split('\n')
      .map((l) => JSON.parse(l) as { mark: number; udp: { dport: number }; payload: string });
    expect(recs).toHaveLength(2);
    for (const rec of recs) expect(rec).toMatchObject({ mark: 2, udp: { dport: 7002 } });
    expect(recs[0].payload.length).toBeGreaterThan(40);
  });

  it('a flowgrabd killed with -9 leaves its queue rules; the next one replaces them without duplicates and removes them on SIGTERM', async () => {
    const q = QUEUE + 1000;
    const jumps = async () => {
      let n = 0;
      for (const tool of ['iptables', 'ip6tables'])
        n += (await cli.exec([tool, '-S', 'OUTPUT'])).stdout
          .split('\n')
          .filter((l) => l.endsWith(`-j FLOWGRAB-Q${q}`)).length;
      return n;
    };
    const args = ['--queue', String(q), '--queue-netns', cli.name, '--queue-rule', 'OUTPUT'];
    const sock = join(dir, 'k.sock');
    const d1 = new SpawnedDaemon(sock, policyFile, { args });
    await d1.ready();
    expect(await jumps()).toBe(2);
    await d1.stop(); // SIGKILL: nothing cleaned up
    expect(await jumps()).toBe(2);
    const d2 = new SpawnedDaemon(sock, policyFile, { args });
    try {
      await d2.ready();
      expect(await jumps()).toBe(2);
      // The new owner decides: unclaimed traffic flows.
      expect(await ping(SRV.v4, 3)).toBe(1);
      d2.signal('SIGTERM');
      await d2.proc.exited;
      expect(await jumps()).toBe(0);
    } finally {
      await d2.stop();
    }
  });
});
