/**
 * flowgrabd's shared NFQUEUE queue against hostile users: the daemon's
 * queue number is refused to a graph's nfqueue() source, a queue another
 * process holds gives the client an error, a registration must lie inside
 * the principal's mark ranges (0x0/0x0 only when granted), and queued
 * packets lose the principal's redacted fields before delivery. Meanwhile a
 * bystander's flow keeps receiving and a third connection is answered.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Policy, Principal } from '../../src/auth/policy.js';
import { Daemon } from '../../src/daemon/server.js';
import { sweepStaleQueueChains } from '../../src/sources/firewall/iptables.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';
import {
  asUser,
  createUsers,
  DIST,
  daemonFiles,
  FIXTURES,
  FLOWGRAB,
  LineProcess,
  removeUsers,
  startFlowScript,
  type TestUser,
  userEnv,
} from '../helpers/daemon.js';
import { Bystanders, QUEUE_PEEK, slowRecording } from '../helpers/hostile.js';

const QUEUE = 1000 + Math.floor(Math.random() * 600);
const OTHER_QUEUE = QUEUE + 700;
let lab: Lab;
let ns: Netns;
let V: TestUser; // verdicts, marks 0x10/0xf0, payload and ip.src redacted
let W: TestUser; // verdicts, no mark ranges
let dir: string;
let socket: string;
let daemon: Daemon;
let by: Bystanders;
const procs: LineProcess[] = [];

interface Line {
  registered?: { mark: string };
  error?: { code: string; message: string; issues?: { code: string; message: string }[] };
  stage?: string;
  packet?: Record<string, unknown>;
  end?: { error?: { code: string; message: string } };
}

/** V may claim marks inside 0x10/0xf0 only; W may read the test's namespace (so only the queue rules stop it). */
function policy(): Policy {
  const v = Principal.parse({
    who: { uid: V.uid },
    sources: ['nfqueue', 'replay'],
    filters: ['*'],
    verdicts: true,
    redact: ['payload', 'ip.src'],
    marks: ['0x10/0xf0'],
  });
  const w = Principal.parse({
    who: { uid: W.uid },
    sources: ['nfqueue'],
    filters: ['*'],
    capabilities: ['verdicts', 'netns'],
    params: { 'nfqueue.netns': { oneOf: [ns.name] } },
  });
  return { version: 1, principals: [v, w] };
}

function spawnAs(user: TestUser | undefined, args: string[]): LineProcess {
  const [cmd, argv] = asUser(user, args);
  const p = new LineProcess(cmd, argv, userEnv(user));
  procs.push(p);
  return p;
}
const queueClient = (user: TestUser, cfg: Record<string, unknown>) =>
  spawnAs(user, [join(FIXTURES, 'queue.mjs'), DIST, socket, JSON.stringify(cfg)]);
const registered = (p: LineProcess) => p.waitJson<Line>((l) => !!l.registered || !!l.error, 10_000, 'registration');

/** `n` UDP datagrams to 127.0.0.1:`port` inside the namespace (the mangle rules mark them by port). */
async function send(port: number, n: number): Promise<void> {
  const script = `const s=require('node:dgram').createSocket('udp4');const [p,n]=process.argv.slice(1);
    (async()=>{for(let i=0;i<Number(n);i++)await new Promise(r=>s.send('secret-payload',Number(p),'127.0.0.1',r));s.close();})();`;
  await ns.exec([process.execPath, '-e', script, String(port), String(n)]);
}

beforeAll(async () => {
  [V, W] = await createUsers('v', 'w');
  lab = new Lab();
  ns = await lab.netns('dhq');
  await ns.exec([
    'iptables',
    '-t',
    'mangle',
    '-A',
    'OUTPUT',
    '-p',
    'udp',
    '--dport',
    '7011',
    '-j',
    'MARK',
    '--set-mark',
    '0x11',
  ]);
  ({ dir, socket } = daemonFiles('fg-dhq-', undefined, 'd.sock'));
  const recording = slowRecording(dir);
  daemon = new Daemon({
    socket,
    policy,
    queue: { queue: QUEUE, netns: ns.name, rules: { chains: ['OUTPUT'] }, verdictTimeoutMs: 3000 },
  });
  await daemon.listen();
  by = await Bystanders.start(socket, recording);
}, 60_000);

afterAll(async () => {
  for (const p of procs) await p.stop();
  await by?.stop();
  await daemon?.close();
  await sweepStaleQueueChains(ns.name).catch(() => {});
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await removeUsers([V, W]);
}, 60_000);

describe("flowgrabd's shared queue under attack", () => {
  it("refuses the daemon's own queue number to a graph's nfqueue() source", async () => {
    const p = startFlowScript(W, socket, { graph: `nfqueue(queue=${QUEUE}, verdict=drop, netns=${ns.name})` });
    procs.push(p);
    const err = await p.waitJson<Line>((l) => !!l.error, 10_000, 'the denial');
    expect(err.stage).toBe('instantiate');
    expect(err.error?.issues?.map((i) => i.code)).toContain('queue_reserved');
    expect(err.error?.message).toMatch(`queue ${QUEUE} is the daemon's own shared queue`);
    await by.unharmed();
  });

  it('a queue another process holds reaches the client as an error', async () => {
    const holder = spawnAs(undefined, [FLOWGRAB, 'nfqueue', '--queue', String(OTHER_QUEUE), '--netns', ns.name]);
    await waitFor(
      async () =>
        (await ns.exec(['cat', '/proc/net/netfilter/nfnetlink_queue'])).stdout.includes(` ${OTHER_QUEUE} `) ||
        holder.done,
      {
        timeoutMs: 10_000,
        what: 'the other process to bind its queue',
      },
    );
    expect(holder.done).toBe(false);
    const p = startFlowScript(W, socket, { graph: `nfqueue(queue=${OTHER_QUEUE}, netns=${ns.name})` });
    procs.push(p);
    const line = await p.waitJson<Line>((l) => !!l.error || !!l.end?.error, 10_000, 'the error');
    const e = line.error ?? line.end?.error;
    expect(e?.message).toMatch(new RegExp(`queue ${OTHER_QUEUE}`));
    expect(e?.code).toMatch(/^FG_ERR_(BUSY|PERMISSION|NETLINK)$/);
    await holder.stop();
    await by.unharmed();
  });

  it("a registration must lie inside the principal's mark ranges; 0x0/0x0 needs a grant", async () => {
    const outside = await registered(queueClient(V, { mark: 0x20, mask: 0xff, mode: 'accept' }));
    expect(outside.error).toEqual(
      expect.objectContaining({
        code: 'FG_ERR_DENIED',
        message: 'mark 0x20/0xff is outside your mark ranges (0x10/0xf0)',
      }),
    );
    const everything = await registered(queueClient(V, { mark: 0, mask: 0, mode: 'accept' }));
    expect(everything.error?.message).toBe('mark 0x0/0x0 is outside your mark ranges (0x10/0xf0)');
    const wide = await registered(queueClient(W, { mark: 0, mask: 0, mode: 'accept' }));
    expect(wide.error?.message).toBe('mark 0x0/0x0 claims every packet: your policy grants no such range');
    expect(daemon.mux?.status().registrations).toEqual([]);
    await by.unharmed();
  });

  it("queued packets reach the client without the principal's redacted fields", async () => {
    const v = spawnAs(V, ['-e', QUEUE_PEEK, socket, String(0x11)]);
    expect((await registered(v)).registered?.mark).toBe('0x11');
    await send(7011, 3);
    await waitFor(() => v.json<Line>().filter((l) => l.packet).length === 3, { timeoutMs: 10_000, what: '3 packets' });
    for (const { packet } of v.json<Line>().filter((l) => l.packet)) {
      expect(packet?.mark).toBe(0x11);
      expect(packet).not.toHaveProperty('payload');
      expect(packet?.ip).not.toHaveProperty('src');
      expect(packet?.ip).toHaveProperty('dst', '127.0.0.1');
    }
    await by.unharmed();
  });
});
