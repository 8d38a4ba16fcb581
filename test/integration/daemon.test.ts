/**
 * flowgrabd as root: remote flow handles follow the same transition table as
 * local ones; 1 000 malformed frames leave the daemon serving, with no fd
 * leaked; a killed client's flows and rules go; a spawned flowgrabd
 * reports status and metrics, reloads on SIGHUP, survives its own kill -9
 * (stale socket and table replaced) and stops cleanly on SIGTERM. And the
 * systemd unit that runs it.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../src/auth/policy.js';
import { RemoteFlowgrab, type RemoteFlowHandle } from '../../src/daemon/client.js';
import type { Peer } from '../../src/daemon/peer.js';
import { MAX_FRAME, Request } from '../../src/daemon/protocol.js';
import { Daemon } from '../../src/daemon/server.js';
import type { Rec } from '../../src/filters/registry.js';
import { Flowgrab } from '../../src/flow/flowgrab.js';
import type { FlowHandle } from '../../src/flow/handle.js';
import type { FlowOp, FlowState } from '../../src/flow/states.js';
import { dnsFeedRefs } from '../../src/sources/dns/source.js';
import { sourcesTornDown } from '../../src/sources/teardown.js';
import { fakeFeed } from '../../src/testing/fake-source.js';
import { floodUdp } from '../../src/testing/flood.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';
import { CT_RULESET } from '../helpers/conntrack-cli.js';
import {
  dnsLogRules,
  FLOWGRAB,
  FLOWGRABD,
  fdCount,
  frame,
  type LineProcess,
  nftTables,
  RawClient,
  ROOT,
  runNodeAs,
  SpawnedDaemon,
  sharedTempDir,
  startFlowScript,
  waitLog,
  writePolicy,
} from '../helpers/daemon.js';
import { EXPECTED_OPS, EXPECTED_STATES, EXPECTED_TRANSITIONS } from '../helpers/flow-states.js';
import { freeTcpPort } from '../helpers/ports.js';
import { ct } from '../helpers/records.js';

const ROOT_PEER: Peer = { uid: 0, gid: 0, pid: 0 };
let lab: Lab;
let ns: Netns;
let dir: string;
let socket: string;
let daemon: Daemon;
const logs: { level: string; msg: string; [k: string]: unknown }[] = [];
const clients: RemoteFlowgrab[] = [];
const procs: LineProcess[] = [];
const spawned: SpawnedDaemon[] = [];

interface StatusFlow {
  flow: number;
  name: string;
  graph: string;
  state: FlowState;
  sent: number;
  droppedToClient: number;
  missed: number;
  buffer: { delivered: number; dropped: number };
  nodes: { node: string; out: number }[];
}
interface StatusClient {
  client: number;
  pid: number;
  uid: number;
  user?: string;
  flows: StatusFlow[];
}
const statusClients = () => daemon.status(ROOT_PEER).clients as StatusClient[];
const daemonFlow = (name: string) => statusClients().flatMap((c) => c.flows.filter((f) => f.name === name))[0];

async function connect(path = socket): Promise<RemoteFlowgrab> {
  const c = await RemoteFlowgrab.connect(path);
  clients.push(c);
  return c;
}

/** A remote flow, instantiated and active, its records and loss counted as they come. */
async function remoteFlow(c: RemoteFlowgrab, graph: string, name?: string) {
  const f = c.create({ name });
  f.populate(graph);
  await f.instantiate();
  const got: Rec[] = [];
  let lost = 0;
  let error: (Error & { code?: string }) | undefined;
  let completed = false;
  f.records$.subscribe({
    next: (r) => got.push(r),
    error: (e) => (error = e),
    complete: () => (completed = true),
  });
  f.lost$.subscribe((n) => (lost += n.count ?? 0));
  await f.activate();
  return {
    f,
    got,
    lost: () => lost,
    error: () => error,
    completed: () => completed,
  };
}

/**
 * What flowgrabd owes a fresh connection that sent `bytes`: a hang-up (with
 * the reason) at the first length over MAX_FRAME, else one reply per
 * complete frame (the rest may be the start of one it waits for).
 */
function dueFor(bytes: Buffer): { replies: number; hangsUp: boolean } {
  let off = 0;
  let replies = 0;
  while (bytes.length - off >= 4) {
    const len = bytes.readUInt32BE(off);
    if (len > MAX_FRAME) return { replies, hangsUp: true };
    if (bytes.length - off - 4 < len) break;
    replies++;
    off += 4 + len;
  }
  return { replies, hangsUp: false };
}

const newTo = (recs: Rec[], base: number) =>
  recs.filter((r) => r.type === 'new' && (r.orig as { dst: string }).dst.startsWith(`127.${base}.`)).length;

/** The status of GET /metrics on 127.0.0.1:`port` sent with this Host header (fetch may not set one). */
function statusWithHost(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics', headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

const freePort = freeTcpPort;

const tableOwnerPid = async (table: string) => {
  const r = await ns.exec(['nft', 'list', 'table', ...table.split(' ')]);
  return Number(/comment "flowgrab pid=(\d+)/.exec(r.stdout)?.[1]);
};

beforeAll(async () => {
  lab = new Lab();
  ns = await lab.netns('daemon');
  await ns.exec(['nft', '-f', '-'], { input: CT_RULESET });
  await ns.sysctls({ 'net.netfilter.nf_conntrack_udp_timeout': 120 });
  dir = sharedTempDir('fg-daemon-');
  socket = join(dir, 'inproc.sock');
  daemon = new Daemon({
    socket,
    // Root needs no principal: everything is allowed.
    policy: () => ({ version: 1, principals: [] }),
    log: (level, msg, fields) => logs.push({ level, msg, ...fields }),
  });
  await daemon.listen();
});

afterAll(async () => {
  for (const p of procs) await p.stop();
  for (const c of clients) await c.close().catch(() => {});
  for (const d of spawned) await d.stop();
  await daemon?.close();
  await sourcesTornDown();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('remote flow handles follow the transition table, as local ones do', () => {
  const GRAPH = 'fake(feed=remote-states) -> match(proto == tcp)';
  const local = new Flowgrab();
  let remote: RemoteFlowgrab;
  beforeAll(async () => {
    remote = await connect();
  });
  afterAll(async () => {
    await local.close();
  });

  type AnyHandle = FlowHandle | RemoteFlowHandle;
  const apply = async (f: AnyHandle, op: FlowOp) => {
    if (op === 'populate') f.populate(GRAPH);
    else await f[op]();
  };
  const to: Record<FlowState, FlowOp[]> = {
    created: [],
    populated: ['populate'],
    instantiated: ['populate', 'instantiate'],
    active: ['populate', 'instantiate', 'activate'],
    paused: ['populate', 'instantiate', 'activate', 'pause'],
    closed: ['close'],
  };
  /** The state after `op`, or the error it threw (class, code, message) and the state it left. */
  async function outcome(f: AnyHandle, op: FlowOp) {
    try {
      await apply(f, op);
      return { state: f.state };
    } catch (e) {
      const err = e as Error & { code?: string };
      return { state: f.state, error: { name: err.name, code: err.code, message: err.message } };
    }
  }

  // The documented table (a literal copy), not the one the code reads: a wrong edit there must fail here.
  for (const state of EXPECTED_STATES) {
    for (const op of EXPECTED_OPS) {
      const next = EXPECTED_TRANSITIONS[state][op];
      it(`${state} --${op}--> ${next ?? 'InvalidStateError'}`, async () => {
        const name = `states-${state}-${op}`;
        const l = local.create({ name });
        const r = remote.create({ name });
        for (const step of to[state]) {
          await apply(l, step);
          await apply(r, step);
        }
        expect([l.state, r.state]).toEqual([state, state]);
        const lo = await outcome(l, op);
        const ro = await outcome(r, op);
        expect(ro).toEqual(lo);
        expect(lo).toEqual(
          next
            ? { state: next }
            : {
                state,
                error: {
                  name: 'InvalidStateError',
                  code: 'FG_ERR_INVALID_STATE',
                  message: `cannot ${op} a flow that is ${state}; allowed: ${Object.keys(EXPECTED_TRANSITIONS[state]).join(', ')}`,
                },
              },
        );
        // The daemon's handle agrees: it exists from instantiate until close.
        const held = ['instantiated', 'active', 'paused'].includes(r.state);
        expect(daemonFlow(name)?.state).toBe(held ? r.state : undefined);
        await l.close();
        await r.close();
        expect(daemonFlow(name)).toBeUndefined();
      });
    }
  }

  it('records reach a remote handle once it is active (those before the first activate are held); those that come while paused are counted as missed, as locally', async () => {
    const feed = fakeFeed('remote-states');
    const l = local.create({ name: 'deliver-local' });
    const r = remote.create({ name: 'deliver-remote' });
    const got = { l: [] as number[], r: [] as number[] };
    for (const [h, out] of [
      [l, got.l],
      [r, got.r],
    ] as const) {
      h.populate(GRAPH);
      await h.instantiate();
      h.records$.subscribe((x) => out.push(x.id as number));
    }
    feed.next(ct(1)); // instantiated, not yet active: held, delivered at activate
    for (const h of [l, r]) await h.activate();
    feed.next(ct(2));
    feed.next(ct(3, { proto: 'udp', protonum: 17 })); // filtered out by the graph
    await waitFor(() => got.l.length === 2 && got.r.length === 2, { what: 'records 1 and 2' });
    for (const h of [l, r]) await h.pause();
    feed.next(ct(4));
    for (const h of [l, r]) await h.activate();
    feed.next(ct(5));
    await waitFor(() => got.l.length === 3 && got.r.length === 3, { what: 'record 5' });
    expect(got).toEqual({ l: [1, 2, 5], r: [1, 2, 5] });
    expect(l.stats().missed).toBe(1);
    expect(daemonFlow('deliver-remote')?.missed).toBe(1);
    expect(r.stats().buffer.delivered).toBe(3);
    await l.close();
    await r.close();
  });
});

/** An active remote flow reading fake feed `name` (with `params` after it), then `rest` of the graph. */
async function activeRemote(name: string, rest: string, params = '') {
  const remote = await connect();
  const feed = fakeFeed(name);
  const f = remote.create({ name: `${name}-flow` });
  f.populate(`fake(feed=${name}${params}) ${rest}`);
  await f.instantiate();
  await f.activate();
  return { feed, f };
}

describe('reading a remote flow with for await', () => {
  it('gives the records in order and ends when the flow does, as a local handle', async () => {
    const { feed, f } = await activeRemote('remote-iter', '-> match(proto == tcp)');
    const read = (async () => {
      const ids: number[] = [];
      for await (const r of f) ids.push(r.id as number);
      return ids;
    })();
    for (let i = 1; i <= 5; i++) feed.next(ct(i, i === 3 ? { proto: 'udp', protonum: 17 } : {}));
    feed.complete();
    expect(await read).toEqual([1, 2, 4, 5]);
    await f.close();
  });

  it("a queued packet's payload arrives as the Buffer its type says, not as JSON's picture of one", async () => {
    const { feed, f } = await activeRemote('remote-payload', '', ', fields=any');
    const got = firstValueFrom(f.records$);
    feed.next({ type: 'packet', ts: 1, packetId: 7, payload: Buffer.from([0x45, 0x00, 0xff]) } as never);
    const r = await got;
    expect(Buffer.isBuffer(r.payload)).toBe(true);
    expect((r.payload as Buffer).toString('hex')).toBe('4500ff');
    await f.close();
  });
});

describe('1 000 malformed frames', () => {
  it('get error replies (or a hang-up), and the daemon keeps serving another client, with no fd leaked', async () => {
    const feed = fakeFeed('fuzz-ref');
    const ref = await remoteFlow(await connect(), 'fake(feed=fuzz-ref)', 'fuzz-ref');
    let n = 0;
    const pump = setInterval(() => feed.next(ct(n++)), 5);
    try {
      await waitFor(() => ref.got.length > 5, { what: 'the reference flow to receive' });
      // A first connection warms up whatever the daemon opens once; then the baseline.
      // It is answered (so identified and a client), then hung up; the baseline is taken once the daemon let it go.
      const gone = logs.filter((l) => l.msg === 'client gone').length;
      const warm = await RawClient.connect(socket);
      warm.write(frame({ v: 1, id: 1, op: 'hello' }));
      await warm.waitFrames(1);
      warm.destroy();
      await waitFor(() => logs.filter((l) => l.msg === 'client gone').length === gone + 1, {
        what: 'the daemon to release the warm-up connection',
      });
      const fdsBefore = fdCount();
      const badBefore = daemon.stats.badFrames;
      const clientsBefore = daemon.stats.clients;
      const seen = [ref.got.length];

      const seed = 20_251_123;
      const sample = <T>(arb: fc.Arbitrary<T>, n: number, k: number) => fc.sample(arb, { seed: seed + k, numRuns: n });
      const isJson = (b: Buffer) => {
        try {
          JSON.parse(b.toString('utf8'));
          return true;
        } catch {
          return false;
        }
      };
      const OPS = ['hello', 'create', 'populate', 'instantiate', 'activate', 'pause', 'close', 'stats', 'status'];
      const KEYS = new Set(['v', 'id', 'op', 'flow', 'name', 'bufferRecords', 'overflow', 'graph', '__proto__']);
      const validBody: Record<string, Record<string, unknown>> = {
        hello: {},
        status: {},
        create: { name: 'x' },
        populate: { flow: 1, graph: 'fake(feed=fuzz-x)' },
        instantiate: { flow: 1 },
        activate: { flow: 1 },
        pause: { flow: 1 },
        close: { flow: 1 },
        stats: { flow: 1 },
      };
      let nextId = 1_000_000_000;
      type Expect = { id: number; code: string; message: string | RegExp };
      const framed: { bytes: Buffer; expect?: Expect }[] = [];

      // Valid framing, body not JSON (150).
      const notJson = sample(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 120 }).map((a) => Buffer.from(a)),
          fc.string({ maxLength: 60 }).map((s) => Buffer.from(`{${s}`)),
        ),
        400,
        1,
      )
        .filter((b) => !isJson(b))
        .slice(0, 150);
      for (const b of notJson) framed.push({ bytes: frame(b) });
      // JSON that is not a request (200).
      const notRequest = sample(fc.jsonValue(), 600, 2)
        .filter((v) => !Request.safeParse(v).success)
        .slice(0, 200);
      for (const v of notRequest) framed.push({ bytes: frame(JSON.stringify(v) ?? 'null') });
      // Unknown ops (150).
      for (const op of sample(
        fc.string({ maxLength: 16 }).filter((o) => !OPS.includes(o)),
        150,
        3,
      )) {
        const id = nextId++;
        framed.push({ bytes: frame({ v: 1, id, op }), expect: { id, code: 'FG_ERR_PROTOCOL', message: /^op: / } });
      }
      // Wrong versions (150).
      for (const v of sample(
        fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.double()).filter((x) => x !== 1),
        150,
        4,
      )) {
        const id = nextId++;
        framed.push({ bytes: frame({ v, id, op: 'hello' }), expect: { id, code: 'FG_ERR_PROTOCOL', message: /^v: / } });
      }
      // A valid request with a field it does not have, e.g. an identity claim (100).
      for (const { op, key, value } of sample(
        fc.record({
          op: fc.constantFrom(...OPS),
          key: fc.oneof(
            fc.constantFrom('uid', 'gid', 'user', 'pid', 'identity'),
            fc.string({ minLength: 1, maxLength: 8 }),
          ),
          value: fc.jsonValue(),
        }),
        300,
        5,
      )
        .filter((x) => !KEYS.has(x.key))
        .slice(0, 100)) {
        const id = nextId++;
        framed.push({
          bytes: frame({ v: 1, id, op, ...validBody[op], [key]: value }),
          expect: { id, code: 'FG_ERR_PROTOCOL', message: `frame: Unrecognized key: "${key}"` },
        });
      }
      // Well-formed requests for flows this connection does not have (100).
      for (const { op, flow } of sample(
        fc.record({
          op: fc.constantFrom('populate', 'instantiate', 'activate', 'pause', 'stats'),
          flow: fc.integer({ min: 1000, max: 2 ** 31 }),
        }),
        100,
        6,
      )) {
        const id = nextId++;
        framed.push({
          bytes: frame({ v: 1, id, op, flow, ...(op === 'populate' ? { graph: 'fake(feed=fuzz-x)' } : {}) }),
          expect: { id, code: 'FG_ERR_INVALID_ARGUMENT', message: `no flow ${flow} on this connection` },
        });
      }
      expect(framed).toHaveLength(850);

      // Random bytes (100) and lengths over the limit (50): each on its own connection, which must end.
      const randomBytes = sample(fc.uint8Array({ minLength: 1, maxLength: 200 }), 100, 7);
      const huge = sample(fc.integer({ min: MAX_FRAME + 1, max: 0xffff_ffff }), 50, 8);
      const hangups: { replies: Record<string, unknown>[]; hugeLen?: number; closedBy: 'daemon' | 'us' }[] = [];
      const oneConnection = async (bytes: Buffer, hugeLen?: number) => {
        const c = await RawClient.connect(socket);
        c.write(bytes);
        // What the daemon must do with these bytes: hang up at an over-limit length (after saying why), or
        // answer each complete frame and wait for the rest. Wait for exactly that, then hang up ourselves.
        const due = dueFor(bytes);
        if (due.hangsUp) await waitFor(() => c.closed, { timeoutMs: 3000, what: 'the daemon to hang up' });
        else await c.waitFrames(due.replies, 3000);
        const closedByDaemon = c.closed;
        if (!closedByDaemon) c.sock.end();
        await waitFor(() => c.closed, { timeoutMs: 3000, what: 'the connection to close' });
        hangups.push({ replies: c.frames, hugeLen, closedBy: closedByDaemon ? 'daemon' : 'us' });
      };
      for (let i = 0; i < randomBytes.length; i += 10)
        await Promise.all(randomBytes.slice(i, i + 10).map((b) => oneConnection(Buffer.from(b))));
      seen.push(ref.got.length);
      for (let i = 0; i < huge.length; i += 10) {
        await Promise.all(
          huge.slice(i, i + 10).map((len) => {
            const h = Buffer.alloc(4 + 16, 0x7b);
            h.writeUInt32BE(len, 0);
            return oneConnection(h, len);
          }),
        );
      }
      seen.push(ref.got.length);

      // The in-step frames over 5 connections, all sent at once: one reply each.
      const conns = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(socket)));
      for (const [i, f] of framed.entries()) conns[i % 5].write(f.bytes);
      // A fence on each connection: frames are answered in order, so its reply comes after every other one.
      const FENCE_ID = 999_999_999;
      for (const c of conns) c.write(frame({ v: 1, id: FENCE_ID, op: 'hello' }));
      for (const [k, c] of conns.entries()) await c.waitFrames(framed.filter((_, i) => i % 5 === k).length + 1, 10_000);
      expect(conns.map((c) => c.frames.at(-1)?.id)).toEqual(Array(5).fill(FENCE_ID));
      const replies = conns.flatMap((c) => c.frames.slice(0, -1));
      expect(replies).toHaveLength(framed.length);
      expect(conns.map((c) => c.closed)).toEqual([false, false, false, false, false]);
      expect(replies.every((r) => r.v === 1 && r.ok === false)).toBe(true);
      const byId = new Map(replies.map((r) => [r.id, r]));
      for (const f of framed) {
        if (!f.expect) continue;
        const r = byId.get(f.expect.id) as { error: { code: string; message: string } };
        expect(r?.error.code).toBe(f.expect.code);
        if (typeof f.expect.message === 'string') expect(r.error.message).toBe(f.expect.message);
        else expect(r.error.message).toMatch(f.expect.message);
      }
      const untagged = replies.filter((r) => typeof r.id !== 'number' || (r.id as number) < 1_000_000_000);
      expect(untagged).toHaveLength(350);
      expect(untagged.every((r) => (r.error as { code: string }).code === 'FG_ERR_PROTOCOL')).toBe(true);
      expect(replies.filter((r) => r.id === null)).toHaveLength(
        150 + notRequest.filter((v) => typeof (v as { id?: unknown })?.id !== 'number').length,
      );
      seen.push(ref.got.length);

      // Hang-ups: an over-limit length is answered with why, then the daemon closes that connection.
      for (const h of hangups.filter((x) => x.hugeLen)) {
        expect(h).toEqual({
          replies: [
            {
              v: 1,
              id: null,
              ok: false,
              error: {
                code: 'FG_ERR_DECODE',
                message: `frame of ${h.hugeLen} bytes is over the ${MAX_FRAME}-byte limit`,
              },
            },
          ],
          hugeLen: h.hugeLen,
          closedBy: 'daemon',
        });
      }
      const randomReplies = hangups.filter((x) => !x.hugeLen).flatMap((x) => x.replies);
      expect(randomReplies.every((r) => r.ok === false)).toBe(true);
      const protocolErrorsOnRandom = randomReplies.filter(
        (r) => (r.error as { code: string }).code === 'FG_ERR_PROTOCOL',
      ).length;
      // Over-limit lengths count as bad frames too (each answered with FG_ERR_DECODE before the hang-up).
      const oversized = hangups
        .flatMap((x) => x.replies)
        .filter((r) => (r.error as { code: string } | undefined)?.code === 'FG_ERR_DECODE').length;
      expect(oversized).toBeGreaterThan(0);
      // 750 of the in-step frames are malformed (the other 100 are well-formed requests about unknown flows).
      expect(daemon.stats.badFrames - badBefore).toBe(750 + protocolErrorsOnRandom + oversized);

      for (const c of conns) c.destroy();
      // The daemon still serves: the reference flow got records throughout and after, and a new client gets answers.
      const marker = 9_000_000;
      for (let i = 0; i < 20; i++) feed.next(ct(marker + i));
      await waitFor(() => ref.got.filter((r) => (r.id as number) >= marker).length === 20, { what: 'marked records' });
      seen.push(ref.got.length);
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
      expect(ref.error()).toBeUndefined();
      const again = await RawClient.connect(socket);
      expect(await again.request({ op: 'hello' })).toMatchObject({ ok: true, identity: { uid: 0, user: 'root' } });
      again.destroy();
      await waitFor(() => daemon.stats.clients === clientsBefore, { what: 'the fuzzing clients to be gone' });
      let fdsAfter = 0;
      await waitFor(() => (fdsAfter = fdCount()) <= fdsBefore, { timeoutMs: 5000, what: 'fds to settle' }).catch(
        () => {},
      );
      expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    } finally {
      clearInterval(pump);
      await ref.f.close();
    }
  });
});

describe('clients that go away', () => {
  it('a client killed mid-flow has its flows closed and its dns() rules removed', async () => {
    const p = startFlowScript(undefined, socket, {
      graph: `dns(netns=${ns.name})`,
      durationMs: 30_000,
      name: 'doomed',
    });
    procs.push(p);
    await p.waitJson((m) => m.ready === true, 10_000, 'ready');
    await waitFor(() => statusClients().some((c) => c.pid === p.pid && c.flows.length === 1), {
      what: 'the client in status',
    });
    expect(statusClients().find((c) => c.pid === p.pid)?.flows).toMatchObject([
      { name: 'doomed', state: 'active', graph: `dns(netns=${ns.name})` },
    ]);
    await waitFor(async () => (await nftTables(ns.name)).includes('inet flowgrab_dns_g53'), { what: 'dns rules' });
    p.kill('SIGKILL');
    expect((await p.exited).signal).toBe('SIGKILL');
    await waitFor(() => !statusClients().some((c) => c.pid === p.pid), { what: 'the client to be gone' });
    expect(daemonFlow('doomed')).toBeUndefined();
    expect(dnsFeedRefs({ netns: ns.name })).toBe(0);
    await sourcesTornDown();
    await waitFor(async () => !(await nftTables(ns.name)).some((t) => t.includes('flowgrab')), {
      what: 'the dns table to go',
    });
    expect(logs.some((l) => l.msg === 'client gone' && l.why === 'disconnected')).toBe(true);
  });
});

describe('a spawned flowgrabd', () => {
  const policyAll = (sources = ['conntrack', 'dns']): PolicyInput => ({
    version: 1,
    principals: [{ who: { uid: 0 }, sources, filters: ['*'] }],
  });

  it('status --json shows clients, flows and counters; the metrics endpoint serves them; SIGHUP closes forbidden flows with the reason', async () => {
    const sock = join(dir, 'spawned-a.sock');
    const policyFile = join(dir, 'policy-a.json');
    writePolicy(policyFile, policyAll());
    const port = await freePort();
    const d = new SpawnedDaemon(sock, policyFile, { metrics: `127.0.0.1:${port}` });
    spawned.push(d);
    await d.ready();
    const c = await connect(sock);
    const ctGraph = `conntrack(netns=${ns.name}, events=[new])`;
    const metered = await remoteFlow(c, ctGraph, 'metered');
    await floodUdp(ns.name, { count: 30, base: 110 });
    await waitFor(() => metered.got.length === 30, { what: '30 records' });

    const st = await runNodeAs(undefined, [FLOWGRAB, '--daemon', sock, 'status', '--json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.out) as { clients: StatusClient[]; connections: number; badFrames: number };
    const mine = status.clients.find((x) => x.pid === process.pid);
    expect(mine).toMatchObject({ uid: 0, user: 'root' });
    expect(mine?.flows).toEqual([
      expect.objectContaining({
        name: 'metered',
        graph: ctGraph,
        state: 'active',
        sent: 30,
        droppedToClient: 0,
        missed: 0,
        buffer: expect.objectContaining({ delivered: 30, dropped: 0 }),
        nodes: [expect.objectContaining({ node: 'conntrack', out: 30 })],
      }),
    ]);
    // The status command's own connection is a client too, with no flows.
    expect(status.clients.filter((x) => x.pid !== process.pid).map((x) => x.flows)).toEqual([[]]);
    expect(status).toMatchObject({ connections: 2, badFrames: 0 });
    const text = await runNodeAs(undefined, [FLOWGRAB, '--daemon', sock, 'status']);
    expect(text.out).toMatch(
      new RegExp(`flow 1 metered \\[active\\] sent 30 dropped 0 missed 0: ${ctGraph.replace(/[()[\]]/g, '\\$&')}`),
    );

    await waitFor(() => (d.log.match(/client gone/g) ?? []).length === 2, { what: 'the status clients to go' });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // A page whose domain was pointed at this machine (DNS rebinding) reads nothing; a scraper by name does.
    expect(await statusWithHost(port, `rebind.evil.example:${port}`)).toBe(421);
    expect(await statusWithHost(port, `localhost:${port}`)).toBe(200);
    expect(await statusWithHost(port, `${hostname()}:${port}`)).toBe(200);
    const metric = (line: string) => metrics.split('\n').includes(line);
    for (const line of [
      'flowgrabd_clients 1',
      'flowgrabd_connections_total 3',
      'flowgrabd_bad_frames_total 0',
      'flowgrabd_flows 1',
      'flowgrabd_records_sent 30',
      'flowgrabd_records_dropped_client 0',
      'flowgrabd_records_dropped_buffer 0',
      'flowgrabd_records_missed 0',
    ])
      expect(metric(line), `${line} in\n${metrics}`).toBe(true);

    // SIGHUP with a policy that no longer allows dns(): the dns flow closes, with the reason; conntrack goes on.
    const dnsFlow = await remoteFlow(c, `dns(netns=${ns.name})`, 'dns-flow');
    await waitFor(async () => (await nftTables(ns.name)).includes('inet flowgrab_dns_g53'), { what: 'dns rules' });
    writePolicy(policyFile, policyAll(['conntrack']));
    d.signal('SIGHUP');
    await waitFor(() => dnsFlow.f.closedReason !== undefined, { what: 'the reason' });
    const reason = 'the new policy denies it: source `dns` is not allowed for uid 0 (root)';
    expect(dnsFlow.f.closedReason).toBe(reason);
    expect(dnsFlow.f.state).toBe('closed');
    await waitFor(() => dnsFlow.error() !== undefined || dnsFlow.completed(), { what: 'records$ to end' });
    // Soft: the rest (rules removed, the allowed flow going on) is checked even while this fails.
    expect
      .soft({
        error: dnsFlow.error() && { code: dnsFlow.error()?.code, message: dnsFlow.error()?.message },
        completed: dnsFlow.completed(),
      })
      .toEqual({
        error: { code: 'FG_ERR_DENIED', message: `flowgrabd closed the flow: ${reason}` },
        completed: false,
      });
    await waitFor(async () => !(await nftTables(ns.name)).some((t) => t.includes('flowgrab')), {
      what: 'the dns rules to go',
    });
    await floodUdp(ns.name, { count: 20, base: 111 });
    await waitFor(() => newTo(metered.got, 111) === 20, { what: 'the allowed flow to go on' });
    expect(metered.f.state).toBe('active');

    // A broken policy file: the old policy stays, flows go on.
    writePolicy(policyFile, { version: 1, principals: [{ who: { uid: 0 }, colour: 'red' }] } as unknown as PolicyInput);
    d.signal('SIGHUP');
    await waitLog(d, /policy reload failed; keeping the old policy/);
    await floodUdp(ns.name, { count: 10, base: 112 });
    await waitFor(() => newTo(metered.got, 112) === 10, { what: 'flows after a failed reload' });
    await c.close();
    d.signal('SIGTERM');
    expect(await d.proc.exited).toEqual({ code: 0, signal: null });
  });

  it('after kill -9 the next start replaces the stale socket and table (one table, no duplicate rules); SIGTERM exits 0 and removes socket and rules', async () => {
    const sock = join(dir, 'spawned-b.sock');
    const policyFile = join(dir, 'policy-b.json');
    writePolicy(policyFile, policyAll());
    const d1 = new SpawnedDaemon(sock, policyFile);
    spawned.push(d1);
    await d1.ready();
    const c1 = await connect(sock);
    const f1 = await remoteFlow(c1, `dns(netns=${ns.name})`, 'before-kill');
    await waitFor(async () => (await nftTables(ns.name)).includes('inet flowgrab_dns_g53'), { what: 'dns rules' });
    expect(await tableOwnerPid('inet flowgrab_dns_g53')).toBe(d1.pid);
    const rulesPerTable = await dnsLogRules(ns.name);
    expect(rulesPerTable).toBe(6); // input, output, forward × (to port 53, from port 53)

    d1.signal('SIGKILL');
    expect((await d1.proc.exited).signal).toBe('SIGKILL');
    await waitFor(() => f1.error() !== undefined, { what: 'the client to see the daemon gone' });
    expect(f1.error()?.code).toBe('FG_ERR_CLOSED');
    expect(existsSync(sock)).toBe(true); // stale
    expect(await nftTables(ns.name)).toContain('inet flowgrab_dns_g53'); // stale, its owner dead

    const d2 = new SpawnedDaemon(sock, policyFile, { ownGroup: true });
    spawned.push(d2);
    await d2.ready();
    const c2 = await connect(sock);
    const f2 = await remoteFlow(c2, `dns(netns=${ns.name})`, 'after-restart');
    const ct2 = await remoteFlow(c2, `conntrack(netns=${ns.name}, events=[new])`, 'ct-after-restart');
    await waitFor(async () => (await tableOwnerPid('inet flowgrab_dns_g53')) === d2.pid, {
      what: 'the table to be the new daemon’s',
    });
    expect((await nftTables(ns.name)).filter((t) => t.includes('flowgrab'))).toEqual(['inet flowgrab_dns_g53']);
    expect(await dnsLogRules(ns.name)).toBe(rulesPerTable);
    // It works: DNS to the namespace's loopback is logged and decoded.
    await ns.exec(['dig', '+time=1', '+tries=1', '@127.0.0.1', 'example.test', 'A'], { allowFail: true });
    await waitFor(() => f2.got.some((r) => r.qname === 'example.test'), { what: 'a DNS record after restart' });
    await floodUdp(ns.name, { count: 5, base: 113 });
    await waitFor(() => newTo(ct2.got, 113) === 5, { what: 'conntrack after restart' });

    d2.signal('SIGTERM');
    expect(await d2.proc.exited).toEqual({ code: 0, signal: null });
    // At exit, not eventually: as systemd would, kill whatever of its process group is left (an nft still
    // deleting a table), then look.
    d2.proc.killGroup('SIGKILL');
    const [sockLeft, tablesLeft] = [existsSync(sock), (await nftTables(ns.name)).filter((t) => t.includes('flowgrab'))];
    expect({ sockLeft, tablesLeft }).toEqual({ sockLeft: false, tablesLeft: [] });
    await waitFor(() => f2.error() !== undefined, { what: 'the client to see the daemon gone' });
    expect(d2.log).toMatch(/msg="stopping" signal=SIGTERM/);
  });
});

describe('deploy/flowgrabd.service', () => {
  const unitPath = join(ROOT, 'deploy/flowgrabd.service');

  /** [section, key, value] for every assignment, in order. */
  function parseUnit(text: string): [string, string, string][] {
    let section = '';
    const out: [string, string, string][] = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#') || line.startsWith(';')) continue;
      const s = /^\[(.+)\]$/.exec(line);
      if (s) {
        section = s[1];
        continue;
      }
      const eq = line.indexOf('=');
      expect(eq, `a key=value line: ${line}`).toBeGreaterThan(0);
      out.push([section, line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
    }
    return out;
  }

  it('passes systemd-analyze verify with no warnings', () => {
    // systemd (Priority: important) is installed by default on Debian, and with it systemd-analyze.
    const r = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect({ status: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ status: 0, stderr: '', stdout: '' });
  });

  it('starts flowgrabd on /run/flowgrab with the policy, reloads with SIGHUP, restarts on failure, and keeps only the capabilities it needs', () => {
    const kv = parseUnit(readFileSync(unitPath, 'utf8'));
    const get = (section: string, key: string) => kv.filter(([s, k]) => s === section && k === key).map(([, , v]) => v);
    expect(get('Service', 'ExecStart')).toEqual([
      '/usr/bin/env flowgrabd --socket /run/flowgrab/flowgrab.sock --policy /etc/flowgrab/policy.json',
    ]);
    expect(get('Service', 'RuntimeDirectory')).toEqual(['flowgrab']);
    expect(get('Service', 'ExecReload')).toEqual(['kill -HUP $MAINPID']);
    expect(get('Service', 'Restart')).toEqual(['on-failure']);
    expect(get('Install', 'WantedBy')).toEqual(['multi-user.target']);
    expect(get('Service', 'CapabilityBoundingSet').join(' ').split(/\s+/).sort()).toEqual([
      'CAP_NET_ADMIN',
      'CAP_NET_RAW',
      'CAP_SETGID',
      'CAP_SETUID',
      'CAP_SYS_ADMIN',
    ]);
    expect(get('Service', 'NoNewPrivileges')).toEqual(['yes']);
    // Entering namespaces must stay possible (setns into net; `ip netns exec` makes a mount namespace).
    const ns = get('Service', 'RestrictNamespaces').join(' ').split(/\s+/);
    expect(ns).toEqual(expect.arrayContaining(['net', 'mnt']));
    // What would break the daemon: V8 needs W+X memory; the conntrack source writes net.netfilter sysctls.
    expect(get('Service', 'MemoryDenyWriteExecute')).not.toContain('yes');
    expect(get('Service', 'ProtectKernelTunables')).not.toContain('yes');
    expect(get('Service', 'PrivateNetwork')).not.toContain('yes');
    // The options it passes are flowgrabd's: its --help names them.
    const help = spawnSync(process.execPath, [FLOWGRABD, '--help'], { encoding: 'utf8' }).stdout;
    for (const opt of ['--socket <path>', '--policy <file>']) expect(help).toContain(opt);
  });
});
