/**
 * NFQUEUE benchmark: UDP datagrams through an OUTPUT NFQUEUE rule in a
 * throw-away namespace, every one accepted by flowgrab, against the same
 * flood with no queue. Reports packets/s through accept verdicts (per-packet
 * and batched), the ratio to the unqueued rate, loss, and CPU per packet.
 * Fail-open is off and the queue deep enough for the whole flood, so every
 * packet waits for its verdict and an nft counter behind the queue checks
 * that each one got through. Both readers, the batched one (the default) and
 * the main-thread one, in the same run; and the latency a queued packet sees,
 * as ping's round trip through a queue whose reader accepts at once.
 */
import { VerdictBook } from '../src/sources/nfqueue/book.js';
import { nfqueue } from '../src/sources/nfqueue/source.js';
import { sourcesTornDown } from '../src/sources/teardown.js';
import { floodUdp } from '../src/testing/flood.js';
import { Lab } from '../src/testing/lab/lab.js';
import type { Netns } from '../src/testing/lab/netns.js';
import { waitFor } from '../src/testing/lab/netns.js';
import { fmt } from './lib.js';

// More than the verdict book remembers (65 536): a long-running queue's steady state, not a fresh one's.
const COUNT = Number(process.env.FG_BENCH_NFQ_COUNT ?? 100_000);
const QUEUE = 11;

async function counter(ns: Netns): Promise<number> {
  const out = (await ns.exec(['nft', 'list', 'table', 'inet', 'fgbq'])).stdout;
  return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
}

interface Run {
  pps: number;
  delivered: number;
  lost: number;
  cpuUsPerPacket: number;
}

/** The flood with no queue: the generator's own rate is the delivery rate. */
async function baseline(ns: Netns, base: number): Promise<Run> {
  const before = await counter(ns);
  const cpu0 = process.cpuUsage();
  const secs = await floodUdp(ns.name, { count: COUNT, base });
  await waitFor(async () => (await counter(ns)) - before >= COUNT, { timeoutMs: 10_000 }).catch(() => {});
  const cpu = process.cpuUsage(cpu0);
  const delivered = (await counter(ns)) - before;
  return { pps: COUNT / secs, delivered, lost: COUNT - delivered, cpuUsPerPacket: (cpu.user + cpu.system) / COUNT };
}

/** The same flood through the queue; `batch` accepts in VERDICT_BATCH messages of up to 64 packets (and at idle). */
async function queued(ns: Netns, base: number, batch: boolean, batchedReceive = true): Promise<Run> {
  const before = await counter(ns);
  let first = 0;
  let last = 0;
  let seen = 0;
  let lost = 0;
  let unbatched = 0;
  let lastId = 0;
  let scheduled = false;
  const src = nfqueue({
    queue: QUEUE,
    netns: ns.name,
    failOpen: false,
    maxLen: COUNT,
    copyRange: 128,
    interfaceNames: false,
    batchedReceive,
    rules: { chains: ['OUTPUT'], match: ['-p', 'udp', '--dport', '9'], families: ['ipv4'] },
    notices: { next: (n) => n.kind === 'loss' && (lost += n.count ?? 0) },
  });
  const done = () => {
    last = performance.now();
  };
  const sub = src.subscribe((p) => {
    if (seen++ === 0) first = performance.now();
    lastId = p.packetId;
    if (!batch) {
      p.verdict('accept');
      return done();
    }
    if (++unbatched >= 64) {
      src.verdictBatch(p.packetId, 'accept');
      unbatched = 0;
      return done();
    }
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (unbatched > 0) src.verdictBatch(lastId, 'accept');
      unbatched = 0;
      done();
    });
  });
  await src.ready();
  const cpu0 = process.cpuUsage();
  await floodUdp(ns.name, { count: COUNT, base });
  await waitFor(() => seen + lost >= COUNT && unbatched === 0, { timeoutMs: 30_000 }).catch(() => {});
  const cpu = process.cpuUsage(cpu0);
  await waitFor(async () => (await counter(ns)) - before >= seen, { timeoutMs: 5_000 }).catch(() => {});
  const delivered = (await counter(ns)) - before;
  sub.unsubscribe();
  await sourcesTornDown();
  const secs = (last - first) / 1000;
  return { pps: seen / secs, delivered, lost, cpuUsPerPacket: (cpu.user + cpu.system) / COUNT };
}

/** Median ping round trip (ms) on loopback, through the queue when `batchedReceive` is given (accepted at once). */
async function pingRtt(ns: Netns, batchedReceive?: boolean): Promise<number> {
  let sub: { unsubscribe(): void } | undefined;
  if (batchedReceive !== undefined) {
    const src = nfqueue({
      queue: QUEUE,
      netns: ns.name,
      interfaceNames: false,
      batchedReceive,
      rules: { chains: ['OUTPUT'], match: ['-p', 'icmp'], families: ['ipv4'] },
    });
    sub = src.subscribe((p) => p.verdict('accept'));
    await src.ready();
  }
  try {
    const rtts = (await ns.exec(['ping', '-n', '-c', '50', '-i', '0.02', '127.0.0.1'])).stdout
      .split('\n')
      .map((l) => /time=([\d.]+)/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    return rtts[rtts.length >> 1] ?? Number.NaN;
  } finally {
    sub?.unsubscribe();
    await sourcesTornDown();
  }
}

const line = (what: string, r: Run, ref?: Run) =>
  `  ${what.padEnd(26)} ${fmt(r.pps, 0).padStart(8)} packets/s${ref ? ` (${fmt(r.pps / ref.pps, 2)}× unqueued)` : ''}, ` +
  `${r.delivered}/${COUNT} delivered, loss counted ${r.lost}, flowgrab CPU ${fmt(r.cpuUsPerPacket, 1)} µs/packet`;

/**
 * The verdict book alone, in process, over more packets than it remembers decided (65 536): what each packet costs
 * it (arrive, then its verdict) in the first 50 000 and in the last, against a plain Map's set and delete of the
 * same ids (the least any book costs). A book whose cost grows with the packets seen shows in the last column.
 */
function bookChurn(): void {
  const n = 300_000;
  const lap = 50_000;
  const laps = (step: (id: number) => void): number[] => {
    const out: number[] = [];
    let t0 = performance.now();
    for (let id = 1; id <= n; id++) {
      step(id);
      if (id % lap === 0) {
        out.push(((performance.now() - t0) * 1000) / lap);
        t0 = performance.now();
      }
    }
    return out;
  };
  const m = new Map<number, number>();
  const floor = laps((id) => {
    m.set(id, 0);
    m.delete(id);
  });
  const book = new VerdictBook();
  const cost = laps((id) => {
    book.arrive(id, 0);
    book.take(id, 'accept');
  });
  console.log(
    `  verdict book, ${n} packets: ${fmt(cost[0], 2)} µs per packet in the first ${lap}, ${fmt(cost.at(-1) as number, 2)} µs in the last (Map set+delete floor ${fmt(floor.at(-1) as number, 2)} µs; last/first ${fmt((cost.at(-1) as number) / cost[0], 2)}×)`,
  );
}

export async function benchNfqueue(): Promise<void> {
  bookChurn();
  const lab = new Lab();
  try {
    const ns = await lab.netns('q');
    // Counted at input, behind the OUTPUT queue: only packets that got an accept verdict reach it.
    await ns.exec([
      'nft',
      'add table inet fgbq; add chain inet fgbq i { type filter hook input priority 0; }; add rule inet fgbq i udp dport 9 counter',
    ]);
    console.log(
      `NFQUEUE: ${COUNT} UDP datagrams on loopback, OUTPUT queue ${QUEUE}, every one accepted (fail-open off)`,
    );
    const plain = await baseline(ns, 1);
    console.log(line('no queue', plain));
    console.log(line('queue, per-packet verdicts', await queued(ns, 2, false), plain));
    console.log(line('queue, batch verdicts (64)', await queued(ns, 3, true), plain));
    console.log(line('main-thread reader, per-packet', await queued(ns, 4, false, false), plain));
    console.log(line('main-thread reader, batch (64)', await queued(ns, 5, true, false), plain));
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    const [none, batched, main] = [await pingRtt(ns), await pingRtt(ns, true), await pingRtt(ns, false)];
    console.log(
      `  ping round trip (median of 50): no queue ${fmt(none, 3)} ms; through the queue: batched reader ${fmt(batched, 3)} ms, main-thread reader ${fmt(main, 3)} ms`,
    );
  } finally {
    await sourcesTornDown();
    await lab.close();
  }
}
