/**
 * flowgrabd's own hygiene against a hostile host (issue 13): a second
 * daemon never takes a live daemon's socket; the socket directory must be
 * writable by nobody else; a busy --metrics port fails the start; stale
 * flowgrab tables of dead processes are swept at start; the metrics show
 * nothing about other users' flows; an uncaught error in one client's work
 * closes that client only.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../src/auth/policy.js';
import { METRICS_CONNECTIONS } from '../../src/daemon/metrics.js';
import { Daemon } from '../../src/daemon/server.js';
import { answers } from '../../src/daemon/socket.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';
import {
  createUsers,
  DIST,
  daemonFiles,
  FLOWGRABD,
  LineProcess,
  RawClient,
  removeUsers,
  runNodeAs,
  SpawnedDaemon,
  startFlowScript,
  type TestUser,
} from '../helpers/daemon.js';
import { ATTACK, type AttackResult, Bystanders, slowRecording } from '../helpers/hostile.js';
import { freePort } from '../helpers/mosquitto.js';

let L: TestUser;
let U: TestUser;
let dir: string;
let policyFile: string;
let recording: string;
let lab: Lab;
let ns: Netns;
const procs: LineProcess[] = [];
const daemons: SpawnedDaemon[] = [];

const policy = (): PolicyInput => ({
  version: 1,
  principals: [{ who: { user: L.name }, sources: ['replay'], filters: ['*'], capabilities: ['read-files'] }],
});

/** flowgrabd as a plain process (for runs expected to fail at start): its exit and stderr. */
async function startFails(args: string[], netns?: string): Promise<{ code: number | null; err: string }> {
  const argv = [FLOWGRABD, '--policy', policyFile, ...args];
  const p = netns
    ? new LineProcess('ip', ['netns', 'exec', netns, process.execPath, ...argv])
    : new LineProcess(process.execPath, argv);
  procs.push(p);
  const t = setTimeout(() => p.kill(), 20_000);
  const { code } = await p.exited;
  clearTimeout(t);
  return { code, err: p.err };
}

function spawnDaemon(socket: string, opts: ConstructorParameters<typeof SpawnedDaemon>[2] = {}): SpawnedDaemon {
  const d = new SpawnedDaemon(socket, policyFile, opts);
  daemons.push(d);
  return d;
}

beforeAll(async () => {
  [L, U] = await createUsers('l', 'u');
  ({ dir, policyFile } = daemonFiles('fg-dhs-', policy()));
  recording = slowRecording(dir);
  lab = new Lab();
  ns = await lab.netns('dhs');
}, 60_000);

afterAll(async () => {
  for (const p of procs) await p.stop();
  for (const d of daemons) await d.stop();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await removeUsers([L, U]);
});

describe('flowgrabd start-up hygiene', () => {
  it('a second flowgrabd on a live socket refuses to start; the first keeps its socket and its clients', async () => {
    const socket = join(dir, 'one.sock');
    const first = await spawnDaemon(socket).ready();
    const by = await Bystanders.start(socket, recording);
    try {
      const second = await startFails(['--socket', socket]);
      expect(second.code).toBe(1);
      // In the style of flowgrab's own errors: one `flowgrabd: error: …` line.
      expect(second.err.split('\n')).toContain(
        `flowgrabd: error: flowgrabd socket ${socket} is in use by process ${first.proc.pid}`,
      );
      expect(lstatSync(socket).isSocket()).toBe(true);
      expect(lstatSync(socket).mode & 0o777).toBe(0o666);
      expect(first.proc.done).toBe(false);
      await by.unharmed();
    } finally {
      await by.stop();
    }
  });

  it('two flowgrabd started at once on one socket: one listens, the other leaves its socket alone; after kill -9 the next starts', async () => {
    const socket = join(dir, 'race.sock');
    const both = [0, 1].map(
      () => new LineProcess(process.execPath, [FLOWGRABD, '--policy', policyFile, '--socket', socket]),
    );
    procs.push(...both);
    await waitFor(() => both.some((p) => p.done) && both.some((p) => /listening/.test(p.err)), {
      timeoutMs: 30_000,
      what: () => `one daemon listening and one refused (${both.map((p) => p.err.trim()).join(' / ')})`,
    });
    const [winner, loser] = /listening/.test(both[0].err) ? both : [both[1], both[0]];
    expect((await loser.exited).code).toBe(1);
    expect(loser.err).toContain(`flowgrabd socket ${socket} is in use by process ${winner.pid}`);
    // The winner's socket is still there and answers (the loser neither unlinked it nor bound its own).
    expect(await answers(socket)).toBe(true);
    expect(winner.done).toBe(false);

    // Killed, it leaves its lock file: the kernel released the lock, the next daemon takes it at once.
    winner.kill('SIGKILL');
    await winner.exited;
    expect(existsSync(`${socket}.lock`)).toBe(true);
    const next = new LineProcess(process.execPath, [FLOWGRABD, '--policy', policyFile, '--socket', socket]);
    procs.push(next);
    await waitFor(() => /listening/.test(next.err) || next.done, { timeoutMs: 15_000, what: 'the next daemon' });
    expect(next.err).toMatch(/listening/);
    next.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(`${socket}.lock`)).toBe(false);
  });

  it('close() while listen() is under way: nothing is left bound or locked, and the next daemon starts', async () => {
    const socket = join(dir, 'early.sock');
    const make = () => new Daemon({ socket, policy: () => ({ version: 1, principals: [] }), sweepStale: false });
    const d = make();
    const listening = d.listen();
    await d.close();
    await listening;
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(`${socket}.lock`)).toBe(false);
    const next = make();
    await next.listen();
    expect(await answers(socket)).toBe(true);
    await next.close();
  });

  it('refuses a socket directory other users can write, and a path that is not a socket; changes no file mode', async () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o1777);
    const r = await startFails(['--socket', join(open, 'd.sock')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(`socket directory ${open}: others may write in it (mode 1777): refusing to write there`);
    // A file where the socket should be (planted, or a mistake) is neither replaced nor chmod-ed.
    const planted = join(dir, 'planted.sock');
    writeFileSync(planted, 'root only', { mode: 0o600 });
    const p = await startFails(['--socket', planted]);
    expect(p.code).toBe(1);
    expect(p.err).toMatch(`${planted} exists and is not a socket: refusing to replace it`);
    expect(lstatSync(planted).mode & 0o777).toBe(0o600);
    expect(readFileSync(planted, 'utf8')).toBe('root only');
  });

  it("start-up mistakes are one `flowgrabd: error:` line and exit 1, as flowgrab's are", async () => {
    const unknown = await startFails(['--no-such-option']);
    expect(unknown).toEqual({ code: 1, err: "flowgrabd: error: unknown option '--no-such-option'\n" });
    const badMetrics = await startFails(['--socket', join(dir, 'm.sock'), '--metrics', 'nowhere']);
    expect(badMetrics.code).toBe(1);
    expect(badMetrics.err.split('\n')).toContain(
      'flowgrabd: error: --metrics address must be HOST:PORT or [IPv6]:PORT with a port from 1 to 65535, got "nowhere"',
    );
    for (const flag of ['--receive-linger', '--flush-interval'])
      for (const bad of ['-1', '101', 'soon', '']) {
        const r = await startFails(['--socket', join(dir, 'l.sock'), flag, bad]);
        expect(r.code).toBe(1);
        expect(r.err).toMatch(
          new RegExp(
            `^flowgrabd: error: option '${flag} <ms>' argument '.*' is invalid\\. a number of milliseconds, 0–100`,
          ),
        );
      }
  });

  it('a busy --metrics port fails the start with exit 1 and leaves no socket', async () => {
    const port = await freePort();
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
    try {
      const socket = join(dir, 'metrics.sock');
      const r = await startFails(['--socket', socket, '--metrics', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.err.split('\n')).toContain(`flowgrabd: error: --metrics 127.0.0.1:${port}: cannot listen (EADDRINUSE)`);
      expect(existsSync(socket)).toBe(false);
    } finally {
      busy.close();
    }
  });

  it('sweeps flowgrab tables of dead owners at start, and keeps live and untagged ones', async () => {
    const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    const selfStart = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    const tables = {
      flowgrab_dns_g901: `flowgrab pid=${dead} start=1`, // the pid is gone
      flowgrab_dns_g902: `flowgrab pid=${process.pid} start=${Number(selfStart) + 1}`, // the pid runs another process
      flowgrab_dns_g903: `flowgrab pid=${process.pid} start=${selfStart}`, // alive: this test
      flowgrab_dns_g904: `flowgrab pid=${dead} start=1 pidns=1`, // another PID namespace's: not judged here
    };
    for (const [name, tag] of Object.entries(tables))
      await ns.exec(['nft', '-f', '-'], { input: `table inet ${name} {\n comment "${tag}"\n}\n` });
    await ns.exec(['nft', 'add', 'table', 'inet', 'flowgrab_untagged']);
    // An NFQUEUE chain and its jump a killed process left.
    const chainTag = `"${tables.flowgrab_dns_g901}"`;
    await ns.exec(['iptables-restore', '-w', '--noflush'], {
      input: `*filter\n:FLOWGRAB-Q901 - [0:0]\n-A FLOWGRAB-Q901 -m comment --comment ${chainTag} -j NFQUEUE --queue-num 901 --queue-bypass\n-I INPUT 1 -m comment --comment ${chainTag} -j FLOWGRAB-Q901\nCOMMIT\n`,
    });
    expect((await ns.exec(['nft', 'list', 'tables'])).stdout).toMatch(/table ip filter/);
    const socket = join(dir, 'sweep.sock');
    const d = new LineProcess('ip', [
      'netns',
      'exec',
      ns.name,
      process.execPath,
      FLOWGRABD,
      '--socket',
      socket,
      '--policy',
      policyFile,
    ]);
    procs.push(d);
    await waitFor(() => /listening/.test(d.err) || d.done, { timeoutMs: 15_000, what: 'the daemon in the namespace' });
    expect(d.err).toMatch(/stale firewall tables removed.*inet flowgrab_dns_g901, inet flowgrab_dns_g902/);
    const left = (await ns.exec(['nft', 'list', 'tables'])).stdout;
    expect(left).not.toMatch(/flowgrab_dns_g90[12]/);
    expect(left).toMatch(/table inet flowgrab_dns_g903/);
    expect(left).toMatch(/table inet flowgrab_dns_g904/);
    expect(left).toMatch(/table inet flowgrab_untagged/);
    expect(d.err).toMatch(/stale NFQUEUE chains removed.*ipv4 FLOWGRAB-Q901/);
    // The chain and its jump are gone; the (now empty) filter table stays: not ours to judge.
    expect((await ns.exec(['iptables', '-w', '-S'])).stdout).not.toContain('FLOWGRAB-Q901');
    await d.stop();
  });

  it("sweeps the namespaces an earlier daemon on its socket recorded: a killed one's DNS tables there go too", async () => {
    const other = await lab.netns('dhs-other');
    const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    await other.exec(['nft', '-f', '-'], {
      input: `table inet flowgrab_dns_g54 {\n comment "flowgrab pid=${dead} start=1"\n}\n`,
    });
    const socket = join(dir, 'recorded.sock');
    // What a killed daemon left: its record of the namespaces its clients' graphs named (netns-record.ts).
    writeFileSync(`${socket}.netns`, JSON.stringify([other.name, 'gone-long-ago']));
    // The sweep runs before the daemon listens.
    const d = await spawnDaemon(socket).ready();
    expect(d.log).toMatch(new RegExp(`stale firewall tables removed.*netns=${other.name}.*inet flowgrab_dns_g54`));
    expect((await other.exec(['nft', 'list', 'tables'])).stdout).not.toContain('flowgrab_dns_g54');
  });

  it('/metrics shows sums only: no user, no flow name, no flow that was never authorized', async () => {
    const port = await freePort();
    const socket = join(dir, 'm.sock');
    await spawnDaemon(socket, { metrics: `127.0.0.1:${port}` }).ready();
    const by = await Bystanders.start(socket, recording);
    try {
      const f = startFlowScript(L, socket, { graph: `replay(file=${recording}, speed=1)`, name: 'secret-plan-x' });
      procs.push(f);
      await f.waitJson((l) => l.ready === true, 15_000, "L's flow");
      // Root creates and populates a flow it never instantiates; U, in no principal, tries too.
      const raw = await RawClient.connect(socket);
      const c = await raw.request({ op: 'create', name: 'never-authorized' });
      await raw.request({ op: 'populate', flow: c.flow, graph: 'conntrack()' });
      const u = JSON.parse(
        (
          await runNodeAs(U, [
            '-e',
            ATTACK,
            socket,
            JSON.stringify({ mode: 'flood', repeat: 1, frames: [{ op: 'create', name: 'u-flow' }] }),
          ])
        ).out,
      ) as AttackResult;
      expect(u.errors).toEqual({ FG_ERR_GRAPH: 1 });
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const secret of ['secret-plan-x', 'never-authorized', 'u-flow', 'victim', L.name, U.name, 'root', 'user='])
        expect(text, secret).not.toContain(secret);
      expect(text.split('\n')).toContain('flowgrabd_flows 2'); // the victim and L's flow
      raw.destroy();
      await by.unharmed();
    } finally {
      await by.stop();
    }
  });

  it('300 connections held open on /metrics take neither the daemon’s descriptors nor its service, and time out', async () => {
    const port = await freePort();
    const socket = join(dir, 'mc.sock');
    const d = await spawnDaemon(socket, { metrics: `127.0.0.1:${port}` }).ready();
    const by = await Bystanders.start(socket, recording);
    const held: Socket[] = [];
    try {
      const fds = () => readdirSync(`/proc/${d.pid}/fd`).length;
      const before = fds();
      let closed = 0;
      for (let i = 0; i < 300; i++) {
        const c = connect(port, '127.0.0.1');
        c.on('error', () => {});
        c.on('close', () => closed++);
        held.push(c);
      }
      // Past the bound the daemon closes new connections at once; the ones it keeps cost a descriptor each.
      await waitFor(() => closed >= 300 - METRICS_CONNECTIONS, {
        timeoutMs: 15_000,
        what: 'connections over the bound closed',
      });
      expect(fds() - before).toBeLessThanOrEqual(METRICS_CONNECTIONS + 4);
      await by.unharmed();
      // Held connections that send nothing are closed after 5 s of silence: a scrape gets in again.
      await waitFor(() => closed === 300, { timeoutMs: 30_000, what: 'idle connections timed out' });
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toMatch(/^flowgrabd_flows /m);
    } finally {
      for (const c of held) c.destroy();
      await by.stop();
      await d.stop();
    }
  });

  it("an uncaught error in one client's work closes that client only", () => {
    const script = `
      const { forClient, installGuard } = await import(process.argv[1]);
      const failed = [];
      const other = [];
      // Prints once the three outcomes are in (with none, the script ends silently and the test fails).
      const report = () => failed.length + other.length === 3 && process.stdout.write(JSON.stringify({ failed, other }));
      installGuard((e) => { other.push(e.message); report(); }, () => {});
      // The client's work fails later, on a timer: the scenario, not a wait.
      forClient({ cid: 1, fail: (e) => { failed.push([1, e.message]); report(); } }, () => setTimeout(() => { throw new Error('client one broke'); }, 1));
      forClient({ cid: 2, fail: (e) => { failed.push([2, e.message]); report(); } }, () => setTimeout(() => { failed.push([2, 'still served']); report(); }, 20));
      setTimeout(() => { throw new Error('nobody'); }, 5);`;
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', script, join(DIST, 'src/daemon/guard.js')],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({
      failed: [
        [1, 'client one broke'],
        [2, 'still served'],
      ],
      other: ['nobody'],
    });
  });
});
