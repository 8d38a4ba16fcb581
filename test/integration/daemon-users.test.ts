/**
 * flowgrabd with real users: three throwaway unprivileged accounts run client
 * scripts (setpriv) against a daemon in this process (and, where a client
 * could stall the daemon, a spawned flowgrabd). Identity comes from the
 * kernel; the policy decides; the scope is enforced on every record; a
 * policy reload closes what it forbids and narrows what it narrows.
 */
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../../src/auth/load.js';
import type { PolicyInput } from '../../src/auth/policy.js';
import type { Peer } from '../../src/daemon/peer.js';
import { Daemon } from '../../src/daemon/server.js';
import { sourcesTornDown } from '../../src/sources/teardown.js';
import { floodUdp } from '../../src/testing/flood.js';
import { Lab, type Netns, run, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns } from '../helpers/conntrack-cli.js';
import {
  createUsers,
  daemonFiles,
  FLOWGRAB,
  type LineProcess,
  nftTables,
  rawScript,
  removeUsers,
  runNodeAs,
  SpawnedDaemon,
  startFlowScript,
  type TestUser,
  waitLog,
  writePolicy,
} from '../helpers/daemon.js';

/** A's scope: 127.248.0.0 – 127.255.255.255; floods to 127.240–247 are outside it. */
const SCOPE = '127.248.0.0/13';
/** In SCOPE and used by no other flood here: a flow made last, to know everything before it has arrived. */
const FENCE = 255;
const ROOT_PEER: Peer = { uid: 0, gid: 0, pid: 0 };

let A: TestUser;
let B: TestUser;
let C: TestUser;
let lab: Lab;
let ns: Netns;
let dir: string;
let socket: string;
let policyFile: string;
let daemon: Daemon;
const logs: { level: string; msg: string; [k: string]: unknown }[] = [];
const procs: LineProcess[] = [];
const spawned: SpawnedDaemon[] = [];

interface CtEnd {
  src: string;
  dst: string;
}
interface CtRec {
  type: string;
  id: number;
  proto: string;
  orig: CtEnd;
  reply: CtEnd;
}
interface Issue {
  code: string;
  path: (string | number)[];
  message: string;
}
interface ScriptLine {
  hello?: { uid: number; gid: number; user?: string };
  ready?: boolean;
  graph?: string;
  record?: CtRec;
  error?: { name: string; code: string; message: string; issues?: Issue[] };
  stage?: string;
  state?: string;
  end?: { error?: { code: string; message: string }; closedReason?: string; state?: string; complete?: boolean };
  status?: { clients: { uid: number; flows: { name: string; graph: string }[] }[] };
}

const v4 = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
function inCidr(addr: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const shift = 32 - Number(bits);
  return Math.floor(v4(addr) / 2 ** shift) === Math.floor(v4(net) / 2 ** shift);
}
const addrs = (r: CtRec) => [r.orig?.src, r.orig?.dst, r.reply?.src, r.reply?.dst].filter((x): x is string => !!x);
const inScope = (r: CtRec, cidr = SCOPE) => addrs(r).some((a) => inCidr(a, cidr));
const flooded = (base: number, n: number) => Array.from({ length: n }, (_, i) => `127.${base}.0.${i + 1}`);

function policy(o: { aScope?: string[]; bSources?: string[] } = {}): PolicyInput {
  return {
    version: 1,
    principals: [
      {
        who: { user: A.name },
        sources: ['conntrack'],
        filters: ['match', 'sample', 'count'],
        params: { 'sample.rate': { max: 0.1 } },
        capabilities: ['netns'],
        scope: o.aScope ?? [SCOPE],
        limits: { flows: 3 },
      },
      {
        who: { uid: B.uid },
        sources: o.bSources ?? ['conntrack', 'dns'],
        filters: ['match', 'project'],
        capabilities: ['netns', 'firewall', 'capture-dns'],
        order: [{ filter: 'project', requires: 'match', position: 'before' }],
      },
    ],
  };
}

function script(user: TestUser, cfg: Parameters<typeof startFlowScript>[2], sock = socket): LineProcess {
  const p = startFlowScript(user, sock, cfg);
  procs.push(p);
  return p;
}

const records = (p: LineProcess) => p.json<ScriptLine>().flatMap((m) => (m.record ? [m.record] : []));
const newTo = (p: LineProcess, base: number) =>
  records(p).filter((r) => r.type === 'new' && r.orig.dst.startsWith(`127.${base}.`));

/** Waits until the daemon holds no client any more (the scripts of a test have gone). */
async function settle(): Promise<void> {
  for (const p of procs) await p.stop();
  procs.length = 0;
  await waitFor(() => (daemon.status(ROOT_PEER).clients as unknown[]).length === 0, {
    timeoutMs: 5000,
    what: 'every client to be gone',
  });
}

async function resetPolicy(p: PolicyInput = policy()): Promise<void> {
  writePolicy(policyFile, p);
  await daemon.reload();
}

beforeAll(async () => {
  [A, B, C] = await createUsers('a', 'b', 'c');
  lab = new Lab();
  ns = await conntrackNetns(lab, 'dusers');
  ({ dir, socket, policyFile } = daemonFiles('fg-dusers-', policy()));
  daemon = new Daemon({
    socket,
    policy: () => loadPolicy(policyFile),
    log: (level, msg, fields) => logs.push({ level, msg, ...fields }),
  });
  await daemon.listen();
});

// Each test's clients go before the next one starts (also when it failed half-way).
afterEach(async () => {
  await settle();
});

afterAll(async () => {
  for (const p of procs) await p.stop();
  for (const d of spawned) await d.stop();
  await daemon?.close();
  await sourcesTornDown();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await removeUsers([A, B, C]);
});

describe('flowgrabd with real users', () => {
  it('each user is who the kernel says; an allowed graph runs with the scope inserted; denied ones fail with every issue; a user not in the policy is denied', async () => {
    const ct = `conntrack(netns=${ns.name}, events=[new])`;
    const a = script(A, { graph: `${ct} -> match(proto == udp)`, count: 20 });
    const ready = await a.waitJson<ScriptLine>((m) => m.ready === true, 10_000, 'A ready');
    expect(a.json<ScriptLine>()[0]).toEqual({ hello: { uid: A.uid, gid: A.gid, user: A.name } });
    expect(ready.graph).toBe(`(${ct} -> scope(cidrs=[${SCOPE}])) -> match(proto == udp)`);
    await floodUdp(ns.name, { count: 20, base: 248 });
    expect((await a.exited).code).toBe(0);
    const got = records(a);
    expect(got.map((r) => r.orig.dst).sort()).toEqual(flooded(248, 20).sort());
    expect(got.every((r) => r.type === 'new' && r.proto === 'udp')).toBe(true);

    const who = (u: TestUser) => `uid ${u.uid} (${u.name})`;
    const cases: [TestUser, string, Issue[]][] = [
      [
        A,
        `dns(netns=${ns.name})`,
        [{ code: 'source_denied', path: ['root'], message: `source \`dns\` is not allowed for ${who(A)}` }],
      ],
      [
        A,
        `${ct} -> project(orig.src) -> sample(rate=0.5)`,
        [
          {
            code: 'filter_denied',
            path: ['root', 'steps', 1],
            message: `filter \`project\` is not allowed for ${who(A)}`,
          },
          { code: 'param_limit', path: ['root', 'steps', 2], message: 'sample: rate=0.5 is above your limit of 0.1' },
        ],
      ],
      [
        B,
        `${ct} -> project(orig.src)`,
        [
          {
            code: 'order',
            path: ['root', 'steps', 1],
            message: 'filter `project` needs `match` before it: `match` is not on every path before it',
          },
        ],
      ],
      [C, ct, [{ code: 'no_principal', path: [], message: `${who(C)} is not in the policy: denied` }]],
    ];
    const runs = cases.map(([u, graph]) => script(u, { graph, durationMs: 5000 }));
    for (const [i, [u, , issues]] of cases.entries()) {
      const p = runs[i];
      expect((await p.exited).code).toBe(3);
      const lines = p.json<ScriptLine>();
      expect(lines[0].hello).toEqual({ uid: u.uid, gid: u.gid, user: u.name });
      expect(lines[1]).toEqual({
        error: {
          name: 'GraphError',
          code: 'FG_ERR_GRAPH',
          message: `not authorized: ${issues.map((x) => x.message).join('; ')}`,
          issues,
        },
        stage: 'instantiate',
        state: 'populated',
      });
    }
    const denied = logs.filter((l) => l.msg === 'graph denied');
    expect(denied.map((l) => l.uid).sort()).toEqual([A.uid, A.uid, B.uid, C.uid].sort());
  });

  it('a scoped user never receives a record outside the scope, even asking for everything; an unscoped one sees those records', async () => {
    await floodUdp(ns.name, { count: 30, base: 240 }); // already in the table: outside A's scope
    const everything = `conntrack(netns=${ns.name})`;
    const a = script(A, { graph: everything, durationMs: 30_000 });
    const b = script(B, { graph: everything, durationMs: 30_000 });
    // Asking for both families through a fork: each branch gets the scope.
    const fork = script(A, {
      graph: `(conntrack(netns=${ns.name}, family=ipv4) | conntrack(netns=${ns.name}, family=ipv6))`,
      durationMs: 30_000,
    });
    for (const p of [a, b, fork]) await p.waitJson<ScriptLine>((m) => m.ready === true, 10_000, 'ready');
    expect(fork.json<ScriptLine>().find((m) => m.ready)?.graph).toBe(
      `conntrack(netns=${ns.name}, family=ipv4) -> scope(cidrs=[${SCOPE}]) | conntrack(netns=${ns.name}, family=ipv6) -> scope(cidrs=[${SCOPE}])`,
    );
    // Out, in, out, in: records on either side of each in-scope batch.
    await floodUdp(ns.name, { count: 50, base: 241 });
    await floodUdp(ns.name, { count: 50, base: 249 });
    await floodUdp(ns.name, { count: 50, base: 242 });
    await floodUdp(ns.name, { count: 50, base: 250 });
    await waitFor(() => [241, 242, 249, 250].every((base) => newTo(b, base).length === 50), {
      timeoutMs: 10_000,
      what: 'B to see all 200 new flows',
    });
    await waitFor(() => [a, fork].every((p) => newTo(p, 249).length + newTo(p, 250).length === 100), {
      timeoutMs: 10_000,
      what: 'A to see its 100 new flows',
    });
    // A fence: one more in-scope flow, after everything else. Events reach each client in kernel order,
    // so once every client has it, anything the earlier floods caused has arrived too.
    await floodUdp(ns.name, { count: 1, base: FENCE });
    await waitFor(() => [a, b, fork].every((p) => newTo(p, FENCE).length === 1), {
      timeoutMs: 10_000,
      what: 'every client to see the fence flow',
    });
    for (const p of [a, b, fork]) await p.stop();

    for (const p of [a, fork]) {
      const mine = records(p);
      const outside = mine.filter((r) => !inScope(r));
      expect(outside).toEqual([]);
      expect(
        mine
          .filter((r) => r.type === 'new')
          .map((r) => r.orig.dst)
          .sort(),
      ).toEqual([...flooded(249, 50), ...flooded(250, 50), ...flooded(FENCE, 1)].sort());
    }
    // What A missed is exactly what is outside: B saw the same kernel events, unscoped.
    const bNew = records(b).filter((r) => r.type === 'new');
    expect(bNew.filter((r) => !inScope(r)).length).toBeGreaterThanOrEqual(100);
    expect(
      records(a)
        .filter((r) => r.type === 'new')
        .map((r) => r.id)
        .sort(),
    ).toEqual(
      bNew
        .filter((r) => inScope(r))
        .map((r) => r.id)
        .sort(),
    );
  });

  it('a client that claims another identity in its frames is refused them, and still gets only what its own uid may', async () => {
    const r = await rawScript(B, socket, [
      { v: 1, id: 1, op: 'hello', uid: 0 },
      { v: 1, id: 2, op: 'hello', user: 'root' },
      { v: 1, id: 3, op: 'create', uid: 0 },
      { v: 1, id: 4, op: 'status', identity: { uid: 0, gid: 0, user: 'root' } },
      { v: 1, id: 5, op: 'create' },
      { v: 1, id: 6, op: 'populate', flow: 1, graph: `arp(netns=${ns.name})`, user: 'root' },
      { v: 1, id: 7, op: 'populate', flow: 1, graph: `arp(netns=${ns.name})` },
      { v: 1, id: 8, op: 'instantiate', flow: 1 },
    ]);
    expect(r.closedByDaemon).toBe(false);
    expect(r.hello).toEqual({ uid: B.uid, gid: B.gid, user: B.name });
    const byId = new Map(r.replies.map((x) => [x.id, x]));
    for (const [id, key] of [
      [1, 'uid'],
      [2, 'user'],
      [3, 'uid'],
      [4, 'identity'],
      [6, 'user'],
    ] as const) {
      expect(byId.get(id)).toEqual({
        v: 1,
        id,
        ok: false,
        error: { code: 'FG_ERR_PROTOCOL', message: `frame: Unrecognized key: "${key}"` },
      });
    }
    expect(byId.get(5)).toMatchObject({ ok: true, flow: 1 });
    expect(byId.get(7)).toMatchObject({ ok: true, state: 'populated' });
    expect(byId.get(8)).toMatchObject({
      ok: false,
      error: {
        code: 'FG_ERR_GRAPH',
        issues: [
          {
            code: 'source_denied',
            path: ['root'],
            message: `source \`arp\` is not allowed for uid ${B.uid} (${B.name})`,
          },
        ],
      },
    });
    expect(r.replies).toHaveLength(8);
  });

  it('CLI as users: watch runs an allowed graph, explains a denied one; status shows a user only their own clients', async () => {
    const ct = `conntrack(netns=${ns.name}, events=[new])`;
    const watch = runNodeAs(A, [
      FLOWGRAB,
      '--daemon',
      socket,
      'watch',
      `${ct} -> match(proto == udp)`,
      '--json',
      '--count',
      '3',
    ]);
    await waitFor(
      () => daemon.allFlows().some((f) => f.uid === A.uid && f.name === 'cli' && f.stats.state === 'active'),
      {
        timeoutMs: 10_000,
        what: "A's CLI flow",
      },
    );
    await floodUdp(ns.name, { count: 10, base: 251 });
    const w = await watch;
    expect(w.err).toBe('');
    expect(w.code).toBe(0);
    const lines = w.out.split('\n').map((l) => JSON.parse(l) as CtRec);
    expect(lines).toHaveLength(3);
    for (const rec of lines) expect(flooded(251, 10)).toContain(rec.orig.dst);

    const denied = await runNodeAs(B, [FLOWGRAB, '--daemon', socket, 'watch', `${ct} -> project(orig.src)`, '--json']);
    expect(denied.code).toBe(1);
    expect(denied.out).toBe('');
    expect(denied.err).toBe(
      'flowgrab: error: root.steps.1: filter `project` needs `match` before it: `match` is not on every path before it\n',
    );

    const a = script(A, { graph: ct, durationMs: 30_000 });
    const b = script(B, { graph: ct, durationMs: 30_000, name: 'b-flow' });
    for (const p of [a, b]) await p.waitJson<ScriptLine>((m) => m.ready === true, 10_000, 'ready');
    const st = await runNodeAs(B, [FLOWGRAB, '--daemon', socket, 'status', '--json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.out) as {
      clients: { uid: number; pid: number; flows: { name: string; graph: string }[] }[];
    };
    expect(status.clients.map((c) => c.uid)).toEqual([B.uid, B.uid]); // the script's connection and the CLI's own
    expect(status.clients.find((c) => c.pid === b.pid)?.flows).toMatchObject([
      { name: 'b-flow', graph: ct, state: 'active' },
    ]);
    // Root sees both users.
    const all = daemon.status(ROOT_PEER).clients as { uid: number }[];
    expect(new Set(all.map((c) => c.uid))).toEqual(new Set([A.uid, B.uid]));
  });

  it('limits.flows counts the flows a user has open, over all their connections', async () => {
    // A's limit is 3: three connections with one flow each are allowed, a fourth is refused.
    const ct = `conntrack(netns=${ns.name}, events=[new])`;
    const lines: ScriptLine[] = [];
    for (let i = 0; i < 4; i++) {
      const p = script(A, { graph: ct, durationMs: 30_000 });
      lines.push(
        await p.waitJson<ScriptLine>((m) => m.ready === true || m.error !== undefined, 10_000, 'ready or error'),
      );
    }
    expect(lines.map((l) => (l.ready ? 'ready' : l.error?.issues?.map((i) => i.message).join('; ')))).toEqual([
      'ready',
      'ready',
      'ready',
      `uid ${A.uid} (${A.name}) already has 3 flows open (limit 3)`,
    ]);
  });

  it('policy reload: a flow the new policy forbids is closed and its client told why; allowed flows keep running', async () => {
    await resetPolicy();
    const a = script(A, {
      graph: `conntrack(netns=${ns.name}, events=[new]) -> match(proto == udp)`,
      durationMs: 30_000,
    });
    const b = script(B, { graph: `dns(netns=${ns.name})`, durationMs: 30_000 });
    for (const p of [a, b]) await p.waitJson<ScriptLine>((m) => m.ready === true, 10_000, 'ready');
    await waitFor(async () => (await nftTables(ns.name)).includes('inet flowgrab_dns_g53'), {
      timeoutMs: 5000,
      what: "B's dns rules",
    });
    writePolicy(policyFile, policy({ bSources: ['conntrack'] }));
    await daemon.reload();
    const reason = `the new policy denies it: source \`dns\` is not allowed for uid ${B.uid} (${B.name})`;
    const end = await b.waitJson<ScriptLine>((m) => m.end !== undefined, 5000, "B's flow to end");
    // Soft: the rest (rules removed, A unaffected) is checked even while this fails.
    expect.soft(end.end).toEqual({
      error: { name: 'FlowgrabError', code: 'FG_ERR_DENIED', message: `flowgrabd closed the flow: ${reason}` },
      closedReason: reason,
      state: 'closed',
    });
    expect(logs.filter((l) => l.msg === 'flow closed by policy reload').map((l) => [l.uid, l.reason])).toEqual([
      [B.uid, reason],
    ]);
    await waitFor(async () => !(await nftTables(ns.name)).some((t) => t.includes('flowgrab_dns')), {
      timeoutMs: 5000,
      what: "B's dns rules to go",
    });
    // A's flow was allowed before and after: it goes on.
    await floodUdp(ns.name, { count: 20, base: 253 });
    await waitFor(() => newTo(a, 253).length === 20, { timeoutMs: 5000, what: 'A to keep receiving' });
    expect(a.done).toBe(false);
    expect(a.json<ScriptLine>().some((m) => m.end)).toBe(false);
    await resetPolicy();
  });

  it('policy reload that narrows a scope: the running flow never shows an address outside the new scope', async () => {
    await resetPolicy();
    const a = script(A, { graph: `conntrack(netns=${ns.name}, events=[new])`, durationMs: 30_000 });
    await a.waitJson<ScriptLine>((m) => m.ready === true, 10_000, 'ready');
    const narrow = '127.254.0.0/15';
    writePolicy(policyFile, policy({ aScope: [narrow] }));
    await daemon.reload();
    await floodUdp(ns.name, { count: 10, base: 252 }); // inside the old scope, outside the new one
    await floodUdp(ns.name, { count: 10, base: 254 }); // inside both
    // Either the flow goes on, narrowed, or it is closed with the reason; it must not show 127.252.x.x.
    await waitFor(() => newTo(a, 254).length === 10 || a.json<ScriptLine>().some((m) => m.end), {
      timeoutMs: 5000,
      what: "A's records after the reload",
    });
    // No wait beyond that: the 127.252 flows were made first, and events arrive in kernel order.
    expect(records(a).filter((r) => !inScope(r, narrow))).toEqual([]);
    await resetPolicy();
  });

  it('a graph naming a file the daemon would block on is answered at once, and other users are served meanwhile', async () => {
    // replay(file=…) reads the file's header to check the graph; a FIFO never ends.
    const fifo = join(dir, 'fifo');
    await run(['mkfifo', '-m', '0666', fifo]);
    const sock = join(dir, 'spawned.sock');
    const file = join(dir, 'spawned-policy.json');
    writePolicy(file, policy());
    const d = new SpawnedDaemon(sock, file);
    spawned.push(d);
    await d.ready();
    try {
      const c = script(C, { graph: `replay(file="${fifo}")`, durationMs: 5000 }, sock);
      await c.waitJson<ScriptLine>((m) => m.hello !== undefined, 5000, "C's hello");
      // C's graph has reached the daemon (it logged the denial): A asks while the daemon has handled it, or is stuck on it.
      await waitLog(d, new RegExp(`msg="graph denied" .*uid=${C.uid} `), 5000);
      // The fact, not a latency: A is answered while the FIFO is still unwritten (only `finally` opens it), so a
      // daemon stuck on it would never answer and the bounded script would fail.
      const other = await rawScript(A, sock, [], 10_000);
      expect(other.hello).toEqual({ uid: A.uid, gid: A.gid, user: A.name });
      const err = await c.waitJson<ScriptLine>((m) => m.error !== undefined, 3000, "C's denial");
      expect(err.error?.issues?.map((i) => i.code)).toEqual(['no_principal']);
    } finally {
      // Unblock a daemon stuck reading the FIFO (a writer that opens and closes), then stop it.
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // nobody reading: the daemon was not blocked
      }
      await d.stop();
    }
  });
});
