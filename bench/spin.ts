/**
 * SPIN example benchmark. A synthetic feed of 100 000 flows among 20 000
 * nodes (200 devices) into the SPIN core:
 *   - records/s the aggregator absorbs, vs a plain Map-update loop over the
 *     same records (the floor any aggregation costs);
 *   - RSS after the feed (goal ≤ 150 MB), vs the process before the core;
 *   - one aging pass (goal ≤ 50 ms), without and with flows to drop;
 *   - list_devices over the Unix socket (goal ≤ 20 ms), vs a round trip of
 *     the smallest method on the same socket.
 * Then on the lab: CPU of the whole app while the clients make traffic, vs
 * the same traffic with no app (SPIN publishes 2–15 % on routers).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Core } from '../examples/spin/core.js';
import { spinRpc } from '../examples/spin/methods.js';
import { listenRpcSocket } from '../examples/spin/servers.js';
import { SpinStore } from '../examples/spin/store.js';
import type { ConntrackRecord, NeighRecord } from '../src/index.js';
import { createHomeNetwork, generateTraffic } from '../src/testing/index.js';
import { socketRpcRaw } from '../test/helpers/spin-core.js';
import { fmt, median } from './lib.js';

const FLOWS = 100_000;
const NODES = 20_000;
const DEVICES = 200;
const mb = (b: number) => fmt(b / 2 ** 20);

function feed(): { neigh: NeighRecord[]; ct: (count?: number) => Generator<ConntrackRecord> } {
  const neigh: NeighRecord[] = Array.from({ length: DEVICES }, (_, i) => ({
    type: 'dump',
    ts: 0,
    family: 'ipv4',
    ifindex: 2,
    ifname: 'br0',
    ip: `192.168.${i >> 8}.${(i & 255) + 1}`,
    mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    state: ['REACHABLE'],
    router: false,
    usable: true,
  }));
  const peers = NODES - DEVICES;
  // Made on the fly (not held in an array), so RSS shows the app, not the benchmark's input.
  function* ct(count = FLOWS): Generator<ConntrackRecord> {
    for (let i = 0; i < count; i++) {
      const dev = i % DEVICES;
      // 100 000 distinct (device, peer, port) flows: each device talks to 500 peers.
      const peer = (dev * 97 + Math.floor(i / DEVICES)) % peers;
      yield {
        type: 'update',
        id: i,
        family: 'ipv4',
        proto: 'tcp',
        protonum: 6,
        orig: {
          src: neigh[dev].ip,
          dst: `10.${peer >> 16}.${(peer >> 8) & 255}.${peer & 255}`,
          sport: 40000 + (i % 20000),
          dport: 443,
        },
        reply: { src: '', dst: '', sport: 443, dport: 40000 },
        status: [],
        delta: { orig: { packets: 3, bytes: 300 }, reply: { packets: 2, bytes: 900 } },
        ts: 0,
      };
    }
  }
  return { neigh, ct };
}

async function synthetic(): Promise<void> {
  const { neigh, ct } = feed();
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
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  const dir = mkdtempSync(join(tmpdir(), 'spin-bench-'));
  let now = Date.now();
  const core = new Core({ store: new SpinStore(dir), ownAddresses: async () => [], now: () => now }, (c) => {
    const d = spinRpc(c);
    return (req) => d.handle(req);
  });
  for (const n of neigh) core.onNeigh(n);
  let coreMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (const c of ct()) core.onConntrack(c);
    coreMs = Math.min(coreMs, performance.now() - t0);
    core.publishTraffic();
  }
  core.flushNodeInfo();
  global.gc?.();
  const rss = process.memoryUsage().rss;
  const heap = process.memoryUsage().heapUsed - heapBefore;
  const flows = core.model.devices().reduce((s, d) => s + (d.flows?.size ?? 0), 0);
  console.log(`spin: ${core.model.size} nodes, ${flows} device flows, ${DEVICES} devices`);
  console.log(
    `spin: aggregator absorbs ${fmt(FLOWS / coreMs / 1000, 2)} M records/s (Map-update floor ${fmt(FLOWS / baseMs / 1000, 2)} M/s; ratio ${fmt(coreMs / baseMs, 2)}x the floor's time)`,
  );
  console.log(
    `spin: RSS ${mb(rss)} MB for the whole benchmark process (goal ≤ 150), ${mb(rss - rssBefore)} MB more than before the core; the core's live heap ${mb(heap)} MB`,
  );

  // Aging: a pass with nothing to drop, then one where half the flows went idle.
  const passes: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    core.ageFlows();
    passes.push(performance.now() - t0);
  }
  now += core.periods.flowIdleMs + 1000;
  for (const c of ct(FLOWS / 2)) core.onConntrack(c);
  global.gc?.();
  const t1 = performance.now();
  const dropped = core.ageFlows();
  const dropMs = performance.now() - t1;
  console.log(
    `spin: aging pass ${fmt(median(passes), 2)} ms with nothing to drop, ${fmt(dropMs, 2)} ms dropping ${dropped} idle flows (goal ≤ 50)`,
  );

  // list_devices over the Unix socket vs the smallest call on the same socket.
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
  core.store.close();
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
