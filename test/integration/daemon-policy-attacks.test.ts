/**
 * The policy half of issue 13 against a real flowgrabd (spawned, so a freeze
 * would show as one) and real unprivileged users: the graphs that once blew
 * up the checker or froze the daemon's thread, and the source parameters and
 * capabilities a user tried to get past the policy. Throughout, a victim's
 * live flow keeps receiving and a third connection's `hello` is answered.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../src/auth/policy.js';
import { floodUdp } from '../../src/testing/flood.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns } from '../helpers/conntrack-cli.js';
import {
  createUsers,
  daemonFiles,
  FLOWGRAB,
  type LineProcess,
  RawClient,
  removeUsers,
  runNodeAs,
  SpawnedDaemon,
  startFlowScript,
  type TestUser,
} from '../helpers/daemon.js';

interface Line {
  ready?: boolean;
  record?: { type: string; proto: string; orig: { src: string; dst: string } };
  error?: { code: string; message: string; issues?: { code: string; message: string }[] };
  stage?: string;
}

let V: TestUser; // the victim, with a live flow
let M: TestUser; // mallory, allowed conntrack, dns and match with limits
let N: TestUser; // allowed nothing at all
let lab: Lab;
let ns: Netns;
let dir: string;
let socket: string;
let policyFile: string;
let daemon: SpawnedDaemon;
let victim: LineProcess;
const procs: LineProcess[] = [];

/** The issue's reproduction: 24 nested forks after one source. */
const forks24 = (src: string) =>
  `${src} -> ${Array.from({ length: 24 }, (_, i) => `(match(proto == udp) | match(orig.dport == ${i}))`).join(' -> ')}`;
const REDOS = '/^(.|.|.|.|.|.|.|.|.|.|.|.)*X$/';

function policy(): PolicyInput {
  return {
    version: 1,
    principals: [
      {
        who: { user: V.name },
        sources: ['conntrack'],
        filters: ['match'],
        params: { 'conntrack.netns': { oneOf: [ns.name] } },
      },
      {
        who: { user: M.name },
        sources: ['*'],
        filters: ['match'],
        capabilities: ['firewall', 'capture-dns'],
        params: {
          'conntrack.netns': { oneOf: [ns.name] },
          'dns.netns': { oneOf: [ns.name] },
          'dns.group': { oneOf: [53] },
        },
      },
      { who: { user: N.name } },
    ],
  };
}

function script(user: TestUser, graph: string, durationMs = 60_000): LineProcess {
  const p = startFlowScript(user, socket, { graph, durationMs });
  procs.push(p);
  return p;
}

const newTo = (p: LineProcess, base: number) =>
  p.json<Line>().filter((l) => l.record?.type === 'new' && l.record.orig.dst.startsWith(`127.${base}.`));

/** The victim's flow gets fresh records and a new connection's hello is answered: the daemon is serving. */
async function stillServing(base: number): Promise<void> {
  await floodUdp(ns.name, { count: 10, base });
  await waitFor(() => newTo(victim, base).length === 10, {
    timeoutMs: 10_000,
    what: `victim's records to 127.${base}`,
  });
  const c = await RawClient.connect(socket);
  try {
    const hello = await c.request({ op: 'hello' });
    expect(hello).toMatchObject({ identity: { uid: 0 } });
  } finally {
    c.destroy();
  }
  expect(daemon.proc.done).toBe(false);
}

/** Runs a graph as `user` that must be refused; returns the issues of the error frame. */
async function refused(user: TestUser, graph: string): Promise<{ code: string; message: string }[]> {
  const p = script(user, graph, 10_000);
  expect((await p.exited).code).toBe(3);
  const err = p.json<Line>().find((l) => l.error);
  expect(err).toMatchObject({ stage: 'instantiate', error: { code: 'FG_ERR_GRAPH' } });
  return err!.error!.issues ?? [];
}

beforeAll(async () => {
  [V, M, N] = await createUsers('v', 'm', 'n');
  lab = new Lab();
  ns = await conntrackNetns(lab, 'dpolicy');
  ({ dir, socket, policyFile } = daemonFiles('fg-dpolicy-', policy()));
  daemon = await new SpawnedDaemon(socket, policyFile).ready();
  victim = script(V, `conntrack(netns=${ns.name}, events=[new]) -> match(proto == udp)`);
  await victim.waitJson<Line>((l) => l.ready === true, 10_000, 'victim ready');
  await stillServing(240);
});

afterAll(async () => {
  for (const p of procs) await p.stop();
  await daemon?.stop();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await removeUsers([V, M, N]);
});

describe('flowgrabd under a hostile policy user', () => {
  it('24 nested forks are refused for their paths (allowed nothing, or allowed every node), and the daemon keeps serving', async () => {
    for (const [user, src] of [
      [N, 'conntrack()'],
      [M, `conntrack(netns=${ns.name})`],
    ] as const) {
      const issues = await refused(user, forks24(src));
      expect(issues).toEqual([
        expect.objectContaining({ code: 'graph_limit', message: expect.stringMatching(/more than 256 paths/) }),
      ]);
    }
    await stillServing(241);
    // The offline checker answers as fast, with the same reason.
    const r = await runNodeAs(undefined, [
      FLOWGRAB,
      'policy',
      'check',
      '--policy',
      policyFile,
      '--user',
      N.name,
      forks24('conntrack()'),
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/denied: graph: the graph has more than 256 paths/);
  });

  it("the ReDoS pattern runs on every record in linear time: mallory's flow and the victim's both receive", async () => {
    const m = script(M, `conntrack(netns=${ns.name}, events=[new]) -> match(orig.dst ~ ${REDOS} || proto == udp)`);
    await m.waitJson<Line>((l) => l.ready === true, 10_000, 'mallory ready');
    await stillServing(242);
    await waitFor(() => newTo(m, 242).length === 10, { timeoutMs: 10_000, what: "mallory's records" });
    await m.stop();
    // A pattern only a backtracking engine could run is refused with the reason, where it stands in the graph.
    const p = script(M, `conntrack(netns=${ns.name}) -> match(orig.dst ~ /(1)\\1/)`, 10_000);
    expect((await p.exited).code).toBe(3);
    expect(p.json<Line>().find((l) => l.error)).toMatchObject({
      stage: 'instantiate',
      error: { code: 'FG_ERR_GRAPH', message: expect.stringMatching(/line 1, column \d+: .*RE2 syntax/) },
    });
  });

  it('source parameters and capabilities are enforced through the daemon', async () => {
    expect(await refused(M, 'conntrack(netns=fgp-elsewhere)')).toEqual([
      expect.objectContaining({
        code: 'param_limit',
        message: `conntrack: netns="fgp-elsewhere" is not one of "${ns.name}"`,
      }),
    ]);
    expect(await refused(M, `dns(netns=${ns.name}, group=99)`)).toEqual([
      expect.objectContaining({ code: 'param_limit', message: 'dns: group=99 is not one of 53' }),
    ]);
    expect(await refused(M, `arp(netns=${ns.name})`)).toEqual([
      expect.objectContaining({
        code: 'param_denied',
        message: expect.stringMatching(/only the daemon's own network namespace/),
      }),
    ]);
    expect(
      (await refused(M, 'nfqueue(queue=7, verdict=drop) | replay(file=/etc/shadow)')).map((i) => i.message),
    ).toEqual([
      'source `nfqueue` gives verdicts on queued packets: your policy does not grant the capability "verdicts"',
      'source `replay` reads files: your policy does not grant the capability "read-files"',
    ]);
    await stillServing(243);
  });
});
