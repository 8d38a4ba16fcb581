/**
 * The SPIN benchmark's synthetic feed: 100 000 (device, peer, port) flows
 * among 20 000 nodes (200 devices, each talking to 500 peers), made on the
 * fly so the records are garbage as soon as the core has read them.
 *
 * Run as a script (`node --expose-gc dist/bench/spin-feed.js`), it is the
 * child process of the RSS measurement: only the SPIN core and the feed,
 * nothing of the benchmark's own; it prints one JSON line with its memory.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Core } from '../examples/spin/core.js';
import { spinRpc } from '../examples/spin/io/methods.js';
import { SpinStore } from '../examples/spin/io/store.js';
import type { ConntrackRecord, NeighRecord } from '../src/index.js';

export const FLOWS = 100_000;
export const NODES = 20_000;
export const DEVICES = 200;

export function devices(): NeighRecord[] {
  return Array.from({ length: DEVICES }, (_, i) => ({
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
}

/** `count` conntrack updates; record i is flow i (mod FLOWS): device i % 200 to one of its 500 peers. */
export function* conntrack(neigh: NeighRecord[], count = FLOWS): Generator<ConntrackRecord> {
  const peers = NODES - DEVICES;
  for (let i = 0; i < count; i++) {
    const dev = i % DEVICES;
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

/** A core as the app makes it (store in a throw-away directory, RPC dispatcher), with a settable clock. */
export function benchCore(): { core: Core; clock: { now: number }; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'spin-bench-'));
  const clock = { now: Date.now() };
  const store = new SpinStore(dir);
  const core = new Core({ store, ownAddresses: async () => [], now: () => clock.now }, (c) => {
    const d = spinRpc(c);
    return (req) => d.handle(req);
  });
  return {
    core,
    clock,
    close: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface FeedMemory {
  /** RSS of the bare process (Node, the core's modules, nothing fed). */
  rssIdle: number;
  /** RSS after the feed and a full collection. */
  rss: number;
  /** RSS once it stopped falling after that (V8 hands back freed pages a few seconds later): what the app holds. */
  rssSettled: number;
  /** How long RSS took to settle, ms. */
  settleMs: number;
  /** Highest RSS while absorbing (the 100 000 new flows arrive within one traffic second). */
  maxRss: number;
  heapUsed: number;
  nodes: number;
  flows: number;
}

/** Child side: feed the whole set twice (the second pass updates), publish, collect, report. */
async function child(): Promise<void> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('spin-feed: run with --expose-gc');
  const { core, close } = benchCore();
  const neigh = devices();
  gc();
  const rssIdle = process.memoryUsage().rss;
  for (const n of neigh) core.onNeigh(n);
  for (let r = 0; r < 2; r++) {
    for (const c of conntrack(neigh)) core.onConntrack(c);
    core.publishTraffic();
  }
  core.flushNodeInfo();
  core.syncStore();
  gc();
  gc();
  const m = process.memoryUsage();
  const settled = await settledRss();
  const out: FeedMemory = {
    rssIdle,
    rss: m.rss,
    rssSettled: settled.rss,
    settleMs: settled.ms,
    maxRss: process.resourceUsage().maxRSS * 1024,
    heapUsed: m.heapUsed,
    nodes: core.model.size,
    flows: core.model.devices().reduce((s, d) => s + d.flowCount, 0),
  };
  close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** RSS once two readings 500 ms apart differ by under 1 MiB (at most 15 s): the process left alone, as an app is. */
async function settledRss(): Promise<{ rss: number; ms: number }> {
  const t0 = performance.now();
  let last = process.memoryUsage().rss;
  while (performance.now() - t0 < 15_000) {
    await new Promise((r) => setTimeout(r, 500));
    const now = process.memoryUsage().rss;
    if (Math.abs(now - last) < 2 ** 20) return { rss: now, ms: performance.now() - t0 };
    last = now;
  }
  return { rss: last, ms: performance.now() - t0 };
}

/**
 * The V8 options `npm run spin` starts the app with (package.json's `spin` script), so the child measures what
 * ships: e.g. `--max-semi-space-size=2`.
 */
export function spinNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const m = /\bnode((?: --[\w-]+(?:=\S+)?)*) dist\/examples\/spin\/main\.js/.exec(pkg.scripts.spin);
  if (!m) throw new Error(`package.json's spin script does not start dist/examples/spin/main.js: ${pkg.scripts.spin}`);
  return m[1].split(' ').filter(Boolean);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child();
