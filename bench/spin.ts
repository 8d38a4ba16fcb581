/**
 * SPIN example benchmark. A synthetic feed of 100 000 flows among 20 000
 * nodes (200 devices) into the SPIN core:
 *   - records/s the aggregator absorbs, vs a plain Map-update loop over the
 *     same records (the floor any aggregation costs);
 *   - RSS of the app fed in a child process of its own (goal ≤ 150 MB), vs
 *     the same process before the feed;
 *   - one aging pass (goal ≤ 50 ms), without and with 50 000 flows to drop;
 *   - list_devices over the Unix socket (goal ≤ 20 ms), vs a round trip of
 *     the smallest method on the same socket.
 * Then on the lab: CPU of the whole app while the clients make traffic, vs
 * the same traffic with no app (SPIN publishes 2–15 % on routers).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Core } from '../examples/spin/core.js';
import { spinRpc } from '../examples/spin/io/methods.js';
import { listenRpcSocket } from '../examples/spin/io/servers.js';
import { createHomeNetwork, generateTraffic } from '../src/testing/index.js';
import { socketRpcRaw } from '../test/helpers/spin-core.js';
import { fmt, median, verdict } from './lib.js';
import { benchCore, conntrack, DEVICES, devices, type FeedMemory, FLOWS, spinNodeFlags } from './spin-feed.js';

const mb = (b: number) => fmt(b / 2 ** 20);

/** A full collection before each measurement, with or without --expose-gc (npm run bench runs without). */
const gc: () => void =
  globalThis.gc ??
  (() => {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  })();

/** RSS of the app alone: the core fed in a child process of its own (bench/spin-feed.ts). */
function childMemory(): Promise<FeedMemory> {
  const script = fileURLToPath(new URL('./spin-feed.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', ...spinNodeFlags(), script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as FeedMemory) : reject(new Error(`spin-feed exited ${code}`)),
    );
  });
}

async function synthetic(): Promise<void> {
  const neigh = devices();
  const ct = (count?: number) => conntrack(neigh, count);
  const rounds = 3;
  // Baseline: a Map update per record, keyed like the aggregator's traffic table.
  let baseMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const m = new Map<string, { n: number; b: number }>();
    for (const c of ct()) {
      const k = `${c.protonum}|${c.orig.src}|${c.orig.dst}|${c.orig.sport}|${c.orig.dport}`;
      const e = m.get(k);
      if (e) {
        e.n += 5;
        e.b += 1200;
      } else m.set(k, { n: 5, b: 1200 });
    }
    baseMs = Math.min(baseMs, performance.now() - t0);
  }
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const { core, clock, close } = benchCore();
  for (const n of neigh) core.onNeigh(n);
  let coreMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (const c of ct()) core.onConntrack(c);
    coreMs = Math.min(coreMs, performance.now() - t0);
    core.publishTraffic();
  }
  core.flushNodeInfo();
  gc();
  const heap = process.memoryUsage().heapUsed - heapBefore;
  const flows = core.model.devices().reduce((s, d) => s + d.flowCount, 0);
  console.log(`spin: ${core.model.size} nodes, ${flows} device flows, ${DEVICES} devices`);
  console.log(
    `spin: aggregator absorbs ${fmt(FLOWS / coreMs / 1000, 2)} M records/s (Map-update floor ${fmt(FLOWS / baseMs / 1000, 2)} M/s; ratio ${fmt(coreMs / baseMs, 2)}x the floor's time)`,
  );
  const child = await childMemory();
  console.log(
    `spin: app RSS ${mb(child.rssSettled)} MB with ${child.nodes} nodes and ${child.flows} flows, measured in a child process of its own started as npm run spin starts the app (${spinNodeFlags().join(' ') || 'no node options'}) once RSS settled after the feed (${fmt(child.settleMs / 1000, 1)} s; goal ≤ 150: ${verdict(child.rssSettled <= 150 * 2 ** 20)}); ` +
      `${mb(child.rss)} MB right after the feed and a full collection (before V8 handed back the pages it freed), ${mb(child.rssIdle)} MB before the feed (Node and the app's modules), peak ${mb(child.maxRss)} MB while absorbing them all within one second, live heap ${mb(child.heapUsed)} MB; in this process the core's live heap is ${mb(heap)} MB`,
  );

  // Aging: a pass with nothing to drop, then passes where half the flows went idle.
  const passes: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    core.ageFlows();
    passes.push(performance.now() - t0);
  }
  const drops: number[] = [];
  let dropped = 0;
  for (let r = 0; r < 3; r++) {
    clock.now += core.periods.flowIdleMs + 1000;
    for (const c of ct(FLOWS / 2)) core.onConntrack(c);
    core.publishTraffic();
    gc();
    const t1 = performance.now();
    dropped = core.ageFlows();
    drops.push(performance.now() - t1);
    for (const c of ct()) core.onConntrack(c); // the dropped flows come back for the next round
    core.publishTraffic();
  }
  console.log(
    `spin: aging pass ${fmt(median(passes), 2)} ms with nothing to drop, ${fmt(median(drops), 2)} ms (median of 3, worst ${fmt(Math.max(...drops), 2)}) dropping ${dropped} idle flows (goal ≤ 50; ratio ${fmt(median(drops) / median(passes), 1)}x the pass with nothing to drop)`,
  );

  // list_devices over the Unix socket vs the smallest call on the same socket.
  const dir = mkdtempSync(join(tmpdir(), 'spin-bench-sock-'));
  const sock = join(dir, 'rpc.sock');
  const d = spinRpc(core);
  const server = await listenRpcSocket(sock, (t) => d.handleText(t));
  const time = async (body: string) => {
    const xs: number[] = [];
    let len = 0;
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      len = (await socketRpcRaw(sock, body)).length;
      xs.push(performance.now() - t0);
    }
    return { ms: median(xs), len };
  };
  const small = await time('{"jsonrpc":"2.0","id":1,"method":"get_flow_block"}');
  const list = await time('{"jsonrpc":"2.0","id":1,"method":"list_devices"}');
  console.log(
    `spin: list_devices over the Unix socket ${fmt(list.ms, 2)} ms for ${list.len} bytes (goal ≤ 20); smallest call ${fmt(small.ms, 2)} ms (ratio ${fmt(list.ms / small.ms, 1)}x)`,
  );
  await new Promise<void>((r) => server.close(() => r()));
  close();
  rmSync(dir, { recursive: true, force: true });
}

async function lab(): Promise<void> {
  const { startSpin } = await import('../examples/spin/app.js');
  const home = await createHomeNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'spin-bench-lab-'));
  const seconds = Number(process.env.FG_BENCH_SPIN_SECONDS ?? 10);
  const cpuDuring = async (): Promise<number> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) await generateTraffic(home, { rounds: 1 });
    const c = process.cpuUsage(c0);
    return ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100;
  };
  try {
    const without = await cpuDuring();
    const app = await startSpin({ netns: home.router.name, httpPort: 0, mqtt: false, stateDir: join(dir, 'state') });
    const withApp = await cpuDuring();
    const c = app.core as Core;
    await app.close();
    console.log(
      `spin: lab CPU of this process ${fmt(withApp)} % with the app vs ${fmt(without)} % generating the same traffic alone: ` +
        `the app costs ${fmt(withApp - without)} % of one core (SPIN publishes 2–15 % on routers); ` +
        `${c.counters.conntrack} conntrack, ${c.counters.dns} DNS, ${c.counters.neigh} neighbour records`,
    );
  } finally {
    await home.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchSpin(): Promise<void> {
  await synthetic();
  await lab();
}
