/**
 * flowgrabd against hostile local users (issue 13, the daemon's half): real
 * unprivileged users attack a spawned flowgrabd while a bystander's flow
 * must keep receiving records and a third connection's hello must keep
 * being answered. Memory checks compare the daemon's RSS before and after.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../src/auth/policy.js';
import { run, waitFor } from '../../src/testing/lab/index.js';
import {
  createUsers,
  daemonFiles,
  type LineProcess,
  procMemory,
  removeUsers,
  runNodeAs,
  SpawnedDaemon,
  startFlowScript,
  type TestUser,
  writePolicy,
} from '../helpers/daemon.js';
import { ATTACK, type AttackResult, Bystanders, rssOf, slowRecording } from '../helpers/hostile.js';

const MiB = 1 << 20;
/** How much the daemon may grow under one attack: the reproductions grew it by 450 MB to 1.3 GB. */
const GROWTH = 120 * MiB;

let L: TestUser; // listed in the policy
let U: TestUser; // in no principal
let dir: string;
let socket: string;
let policyFile: string;
let recording: string;
let secret: string;
let daemon: SpawnedDaemon;
let by: Bystanders;
const procs: LineProcess[] = [];

function policy(limits: { flows?: number; bufferRecords?: number } = { flows: 8 }): PolicyInput {
  return {
    version: 1,
    principals: [
      { who: { user: L.name }, sources: ['replay', 'conntrack'], filters: ['*'], capabilities: ['read-files'], limits },
    ],
  };
}

async function attack(user: TestUser, cfg: Record<string, unknown>, timeoutMs = 60_000): Promise<AttackResult> {
  const r = await runNodeAs(user, ['-e', ATTACK, socket, JSON.stringify(cfg)], timeoutMs);
  if (r.code !== 0) throw new Error(`attacker exited ${r.code ?? r.signal}: ${r.err}`);
  const res = JSON.parse(r.out) as AttackResult;
  // Every mode waits for a fact, bounded: one it did not see fails the test here.
  if (res.timedOut) throw new Error(`attacker: ${res.timedOut} not seen within its bound: ${r.out}`);
  return res;
}

interface Line {
  ready?: boolean;
  record?: unknown;
  error?: { code: string; message: string };
  end?: { error?: { code: string; message: string }; closedReason?: string };
  after?: { closedReason?: string };
}
function flowAs(user: TestUser, cfg: Parameters<typeof startFlowScript>[2]): LineProcess {
  const p = startFlowScript(user, socket, cfg);
  procs.push(p);
  return p;
}
const reasonOf = (p: LineProcess) =>
  p.json<Line>().find((l) => l.end?.closedReason || l.after?.closedReason) as Line | undefined;

beforeAll(async () => {
  [L, U] = await createUsers('l', 'u');
  ({ dir, socket, policyFile } = daemonFiles('fg-hostile-', policy(), 'd.sock'));
  recording = slowRecording(dir);
  secret = join(dir, 'secret');
  writeFileSync(secret, `${JSON.stringify({ ts: 1, secret: 'root only' })}\n`, { mode: 0o600 });
  daemon = new SpawnedDaemon(socket, policyFile, { args: ['--frame-timeout', '1500', '--idle-timeout', '3000'] });
  await daemon.ready();
  by = await Bystanders.start(socket, recording);
}, 60_000);

afterAll(async () => {
  for (const p of procs) await p.stop();
  await by?.stop();
  await daemon?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await removeUsers([L, U]);
});

describe('flowgrabd under attack', () => {
  it('a user in no principal gets no handle: 2000 create+populate frames are all refused and the daemon does not grow', async () => {
    const before = rssOf(daemon.pid);
    const big = `conntrack() ${' '.repeat(60_000)}`;
    const r = await attack(U, {
      mode: 'flood',
      repeat: 1000,
      frames: [{ op: 'create' }, { op: 'populate', flow: '$n', graph: big }],
    });
    expect(r.ok).toBe(0);
    // Every create and every populate: the same denial instantiate would give, before anything is kept.
    expect(r.errors).toEqual({ FG_ERR_GRAPH: 2000 });
    expect(r.messages.FG_ERR_GRAPH).toBe(`not authorized: uid ${U.uid} (${U.name}) is not in the policy: denied`);
    expect(rssOf(daemon.pid) - before).toBeLessThan(GROWTH);
    await by.unharmed();
  });

  it('a GraphSpec of 200 000 values is refused by count before the schema walks it (that took seconds and 400 MB)', async () => {
    writeFileSync(`/proc/${daemon.pid}/clear_refs`, '5');
    const before = rssOf(daemon.pid);
    const spec = { version: 1, root: { type: 'node', name: 'x', args: '$nulls', params: {} } };
    const r = await attack(U, {
      mode: 'flood',
      repeat: 3,
      nulls: 200_000,
      frames: [{ op: 'populate', flow: 1, graph: spec }],
    });
    expect(r.errors).toEqual({ FG_ERR_PROTOCOL: 3 });
    expect(r.messages.FG_ERR_PROTOCOL).toMatch(/more than 4096 argument and parameter values/);
    expect(procMemory(daemon.pid).peak - before).toBeLessThan(60 * MiB);
    await by.unharmed();
  });

  it('a listed user is capped in sources across its flows: 16-source graphs, the fifth is refused', async () => {
    const graph = Array.from({ length: 16 }, (_, i) => `conntrack(events=[new], mark=${i + 1})`).join(' | ');
    const r = await attack(L, {
      mode: 'flood',
      repeat: 5,
      frames: [{ op: 'create' }, { op: 'populate', flow: '$n', graph }, { op: 'instantiate', flow: '$n' }],
    });
    expect(r.errors).toEqual({ FG_ERR_DENIED: 1 });
    expect(r.ok).toBe(14); // 5 creates, 5 populates, 4 instantiates of 16 sources each
    expect(r.messages.FG_ERR_DENIED).toBe(
      `uid ${L.uid} (${L.name}) has 64 sources in its flows and this graph has 16: over the 64 one user may hold; close some flows first`,
    );
    await by.unharmed();
  });

  it('the source cap counts a GraphSpec as given (one whose printed text does not parse counted none)', async () => {
    const branches = Array.from({ length: 16 }, (_, i) => ({
      type: 'node',
      name: 'conntrack',
      args: [],
      params: { events: ['new'], mark: 100 + i },
    }));
    // match with its expression as a named parameter: valid as a spec, printed as text that does not parse.
    const match = { type: 'node', name: 'match', args: [], params: { expr: 'proto == tcp' } };
    const graph = { version: 1, root: { type: 'pipe', steps: [{ type: 'fork', branches }, match] } };
    const r = await attack(L, {
      mode: 'flood',
      repeat: 5,
      frames: [{ op: 'create' }, { op: 'populate', flow: '$n', graph }, { op: 'instantiate', flow: '$n' }],
    });
    expect(r.messages.FG_ERR_DENIED).toBe(
      `uid ${L.uid} (${L.name}) has 64 sources in its flows and this graph has 16: over the 64 one user may hold; close some flows first`,
    );
    expect(r.errors).toEqual({ FG_ERR_DENIED: 1 });
    expect(r.ok).toBe(14);
    await by.unharmed();
  });

  it('a listed user is capped: flows per uid, and populate text per flow', async () => {
    const before = rssOf(daemon.pid);
    const r = await attack(L, { mode: 'flood', repeat: 100, frames: [{ op: 'create' }] });
    expect(r.ok).toBe(64);
    expect(r.errors.FG_ERR_DENIED).toBe(36);
    expect(r.messages.FG_ERR_DENIED).toBe(
      `uid ${L.uid} (${L.name}) already holds 64 flows, the most one user may hold (64): close some first`,
    );
    const chunk = 'x'.repeat(30_000);
    const p = await attack(L, {
      mode: 'flood',
      repeat: 1,
      frames: [1, 2, 3].map(() => ({ op: 'populate', flow: 1, graph: chunk })).concat([{ op: 'create' }] as never),
    });
    // Each connection has its own flows: this one has none until it creates one, so populate names no flow.
    expect(p.errors.FG_ERR_INVALID_ARGUMENT).toBe(3);
    const q = await attack(L, {
      mode: 'flood',
      repeat: 1,
      frames: [{ op: 'create' }, ...[1, 2, 3].map(() => ({ op: 'populate', flow: 1, graph: chunk }))],
    });
    expect(q.ok).toBe(3); // create and two populates: 60 000 bytes
    expect(q.errors.FG_ERR_DENIED).toBe(1);
    expect(q.messages.FG_ERR_DENIED).toBe('flow 1: graph text over 65536 bytes (60000 held, 30000 more asked)');
    // 64 flows each holding 60 000 bytes of graph text, then status: the reply stays small.
    const s = await attack(L, {
      mode: 'flood',
      repeat: 64,
      frames: [
        { op: 'create', name: 'n'.repeat(200) },
        { op: 'populate', flow: '$n', graph: chunk + chunk },
        { op: 'status' },
      ],
    });
    expect(s.errors).toEqual({});
    expect(s.ok).toBe(3 * 64);
    expect(s.biggest).toBeLessThan(256 * 1024);
    expect(rssOf(daemon.pid) - before).toBeLessThan(GROWTH);
    await by.unharmed();
  });

  it('a client that never reads and spams status does not grow the daemon: it stops being read', async () => {
    const before = rssOf(daemon.pid);
    const spam = attack(U, { mode: 'spam', frame: { op: 'status' }, ms: 4000, settleMs: 10_000, wantOk: 10 });
    await by.unharmed(); // during the attack
    const r = await spam;
    expect(r.written).toBeGreaterThan(10_000);
    // Replies went out only as fast as the client read them; none was lost and none is an error.
    expect(r.errors).toEqual({});
    expect(r.ok).toBeGreaterThan(0);
    expect(rssOf(daemon.pid) - before).toBeLessThan(GROWTH);
    await by.unharmed();
  });

  it('32 connections that never read their replies cost the daemon little, and are closed as idle', async () => {
    // Each 4-byte empty frame is answered with ~100 bytes: unbounded, 32 such connections made the daemon hold
    // 400 MB of replies, and (paused) they never timed out.
    writeFileSync(`/proc/${daemon.pid}/clear_refs`, '5'); // the peak (VmHWM) from now on
    const before = rssOf(daemon.pid);
    const unread = attack(U, { mode: 'unread', conns: 32, bytes: 1 << 20, waitMs: 30_000 });
    await by.unharmed();
    const r = await unread;
    expect(r.closed).toBe(32);
    expect(procMemory(daemon.pid).peak - before).toBeLessThan(40 * MiB);
    await by.unharmed();
  });

  it('unfinished frames time out, and a uid holds at most 32 connections; idle ones are closed', async () => {
    const before = rssOf(daemon.pid);
    const partial = attack(U, { mode: 'partial', conns: 30, claim: MiB, send: 512 * 1024, waitMs: 15_000 });
    await by.unharmed();
    const r = await partial;
    expect(r.closed).toBe(30);
    expect(r.errors.FG_ERR_TIMEOUT).toBe(30);
    expect(r.messages.FG_ERR_TIMEOUT).toBe('frame not completed within 1500 ms');
    expect(rssOf(daemon.pid) - before).toBeLessThan(GROWTH);

    const conns = await attack(U, { mode: 'conns', conns: 40, waitMs: 15_000 });
    expect(conns.errors.FG_ERR_DENIED).toBe(8);
    expect(conns.messages.FG_ERR_DENIED).toBe(`uid ${U.uid} already has 32 connections, the most one user may have`);
    expect(conns.errors.FG_ERR_TIMEOUT).toBe(32);
    expect(conns.messages.FG_ERR_TIMEOUT).toBe('idle for 3000 ms with nothing open');
    expect(conns.closed).toBe(40);
    await by.unharmed();
  });

  it('replay of /dev/zero, a FIFO, a file without newlines, a record nested 100 000 deep or not a record ends that flow with an error; the daemon lives', async () => {
    const fifo = join(dir, 'fifo');
    await run(['mkfifo', '-m', '0666', fifo]);
    const noNewline = join(dir, 'long');
    writeFileSync(noNewline, Buffer.alloc(3 * MiB, 0x61), { mode: 0o644 });
    // One record of 100 000 nested arrays (200 KB, JSON.parse takes it): JSON.stringify in the daemon's shared
    // flush overflowed the stack on it and took another client's connection down.
    const deep = join(dir, 'deep');
    writeFileSync(deep, `{"ts":1,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}\n`, { mode: 0o644 });
    const notRecord = join(dir, 'not-record');
    writeFileSync(notRecord, '5\n', { mode: 0o644 });
    const cases: [string, RegExp][] = [
      ['/dev/zero', /^replay: \/dev\/zero: not a regular file$/],
      [fifo, /not a regular file$/],
      [noNewline, /: a line is longer than 1048576 bytes$/],
      [deep, /deep:1: a record nested deeper than 32 levels/],
      [notRecord, /not-record:1: not a record \(a JSON object\)$/],
    ];
    for (const [file, message] of cases) {
      const p = flowAs(L, { graph: `replay(file=${file})` });
      const end = await p.waitJson<Line>((l) => l.end !== undefined, 15_000, `the end of replay(${file})`);
      expect(end.end?.error?.message, file).toMatch(message);
      await by.unharmed();
    }
    expect(daemon.proc.done).toBe(false);
  });

  it('replay opens files as the client: a root-only file is refused, a file the user can read replays', async () => {
    const denied = flowAs(L, { graph: `replay(file=${secret})` });
    const end = await denied.waitJson<Line>((l) => l.end !== undefined, 15_000, 'the denied replay');
    expect(end.end?.error).toEqual(expect.objectContaining({ code: 'FG_ERR_PERMISSION' }));
    expect(end.end?.error?.message).toBe(`replay: ${secret}: EACCES`);
    expect(denied.json<Line>().filter((l) => l.record)).toEqual([]);
    const ok = flowAs(L, { graph: `replay(file=${recording}, speed=0)`, count: 100 });
    expect((await ok.exited).code).toBe(0);
    expect(ok.json<Line>().filter((l) => l.record)).toHaveLength(100);
    await by.unharmed();
  });

  it('SIGHUP with tighter limits closes the flows over them, telling each client why', async () => {
    const graph = `replay(file=${recording}, speed=1)`;
    const small = [1, 2, 3].map(() => flowAs(L, { graph, bufferRecords: 500 }));
    for (const p of small) await p.waitJson<Line>((l) => l.ready === true, 15_000, 'ready');
    const big = flowAs(L, { graph, bufferRecords: 5000 });
    await big.waitJson<Line>((l) => l.ready === true, 15_000, 'ready');
    writePolicy(policyFile, policy({ flows: 1, bufferRecords: 1000 }));
    daemon.signal('SIGHUP');
    await waitFor(() => reasonOf(big) !== undefined, { timeoutMs: 15_000, what: 'the big buffer closed' });
    expect(JSON.stringify(reasonOf(big))).toMatch(/its buffer \(5000 records\) is over the new limit of 1000/);
    await waitFor(() => small.filter((p) => reasonOf(p)).length === 2, { timeoutMs: 15_000, what: '2 closed' });
    const [survivor, ...closed] = [...small].sort((a, b) => Number(!!reasonOf(a)) - Number(!!reasonOf(b)));
    for (const p of closed) expect(JSON.stringify(reasonOf(p))).toMatch(/the new policy allows 1 flows for you/);
    expect(reasonOf(survivor)).toBeUndefined();
    const kept = survivor.json<Line>().filter((l) => l.record).length;
    await waitFor(() => survivor.json<Line>().filter((l) => l.record).length > kept + 5, {
      timeoutMs: 15_000,
      what: 'the flow within the limit to go on',
    });
    writePolicy(policyFile, policy());
    daemon.signal('SIGHUP');
    await by.unharmed();
  });
});
