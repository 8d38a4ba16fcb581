/**
 * Conntrack benchmarks (issues: foundation, 18). Every figure is a ratio to
 * conntrack-tools measured in the same run on the same table, with process
 * CPU read from /proc for both sides (conntrack-proc.ts).
 *  1. dump + decode in-process vs `conntrack -L > /dev/null`          (goal ≤ 0.5×)
 *  2. `flowgrab conntrack --dump --json > /dev/null` vs `conntrack -L` (goal ≤ 1.25×, wall and CPU); both are
 *     also run on the empty table first, to split each one's CPU into what a start costs and what an entry does
 *  3. events (conntrack-events.ts): fixed rates vs `conntrack -E`, loss on both sides, reliable mode,
 *     and a burst of DESTROYs (loss and repeats).
 * FG_BENCH_ENTRIES (100 000) and FG_BENCH_RUNS (5) scale it down on a busy machine; FG_BENCH_ONLY=dump|events.
 */
import { lastValueFrom } from 'rxjs';
import { count as rxCount } from 'rxjs/operators';
import { conntrack } from '../src/sources/conntrack/source.js';
import { benchConntrackEvents } from './conntrack-events.js';
import { type Cpu, minus, processCpu, runMeasured, total } from './conntrack-proc.js';
import { BenchNetns, fmt, median } from './lib.js';

const ENTRIES = Number(process.env.FG_BENCH_ENTRIES ?? 100_000);
const RUNS = Number(process.env.FG_BENCH_RUNS ?? 5);
const cli = new URL('../bin/flowgrab.js', import.meta.url).pathname;

async function inProcessDump(ns: string): Promise<{ ms: number; cpu: Cpu }> {
  const c0 = processCpu('self');
  const t0 = process.hrtime.bigint();
  const n = await lastValueFrom(conntrack({ dump: true, netns: ns }).pipe(rxCount()));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (n < ENTRIES) throw new Error(`dump saw ${n} entries, expected ≥ ${ENTRIES}`);
  return { ms, cpu: minus(processCpu('self'), c0) };
}

const line = (label: string, ms: number[], cpu: Cpu[], base?: { ms: number; cpu: number }) => {
  const m = median(ms);
  const c = median(cpu.map(total));
  const sys = median(cpu.map((x) => x.sys));
  const ratio = base ? `   ratio wall ${fmt(m / base.ms, 2)}×, CPU ${fmt(c / base.cpu, 2)}×` : '';
  console.log(
    `  ${label.padEnd(36)} ${fmt(m).padStart(7)} ms wall, ${fmt(c).padStart(6)} ms CPU (sys ${fmt(sys)})${ratio}`,
  );
};

/**
 * The environment without NODE_EXTRA_CA_CERTS, or undefined when it is not set. Set (as on some build and CI
 * machines, to the whole system bundle), every node process parses those certificates before running any code:
 * `node -e 0` took 47 ms of CPU with it and 16 without on the bench machine. A stock install does not set it.
 */
function withoutExtraCerts(): NodeJS.ProcessEnv | undefined {
  if (!process.env.NODE_EXTRA_CA_CERTS) return undefined;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** CPU of a process start on an empty table: the dump's cost that does not grow with the entries. */
interface StartCost {
  ct: number;
  cli: number;
}

/** Both commands on the namespace's table while it is empty (before any entry is made), medians of 2 × RUNS. */
function startCosts(ns: BenchNetns, cliArgv: string[]): StartCost {
  const ct: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < 2 * RUNS; i++) {
    ct.push(total(runMeasured(['ip', 'netns', 'exec', ns.name, 'conntrack', '-L']).cpu));
    ours.push(total(runMeasured(cliArgv).cpu));
  }
  return { ct: median(ct), cli: median(ours) };
}

const cliArgvIn = (ns: BenchNetns) => [
  'ip',
  'netns',
  'exec',
  ns.name,
  process.execPath,
  cli,
  'conntrack',
  '--dump',
  '--json',
];

async function dumpBench(ns: BenchNetns, start: StartCost): Promise<void> {
  const ct: { ms: number; cpu: Cpu }[] = [];
  const ours: { ms: number; cpu: Cpu }[] = [];
  const ourCli: { ms: number; cpu: Cpu }[] = [];
  const ourCliStock: { ms: number; cpu: Cpu }[] = [];
  const stock = withoutExtraCerts();
  const cliArgv = cliArgvIn(ns);
  await inProcessDump(ns.name); // warm-up
  for (let i = 0; i < RUNS; i++) {
    ct.push(runMeasured(['ip', 'netns', 'exec', ns.name, 'conntrack', '-L']));
    ours.push(await inProcessDump(ns.name));
    ourCli.push(runMeasured(cliArgv));
    if (stock) ourCliStock.push(runMeasured(cliArgv, stock));
  }
  const base = { ms: median(ct.map((x) => x.ms)), cpu: median(ct.map((x) => total(x.cpu))) };
  console.log(`dump of ${ns.count()} entries, median of ${RUNS} runs (CPU from /proc, 10 ms ticks)`);
  line(
    'conntrack -L (whole process)',
    ct.map((x) => x.ms),
    ct.map((x) => x.cpu),
  );
  line(
    'flowgrab in-process dump+decode',
    ours.map((x) => x.ms),
    ours.map((x) => x.cpu),
    base,
  );
  console.log('    goal ≤ 0.5× (wall)');
  line(
    'flowgrab conntrack --dump --json',
    ourCli.map((x) => x.ms),
    ourCli.map((x) => x.cpu),
    base,
  );
  if (stock) {
    line(
      '  the same, NODE_EXTRA_CA_CERTS unset',
      ourCliStock.map((x) => x.ms),
      ourCliStock.map((x) => x.cpu),
      base,
    );
    console.log(`    (NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS} here: node parses it at every start)`);
  }
  console.log('    goal ≤ 1.25× (wall and CPU)');
  // What each start costs whatever the table holds (node: its start, loading the CLI, the JIT compiling the hot
  // code), and what each entry costs on top: the ratio a larger table tends to.
  const n = ns.count();
  const perEntry = (full: number, empty: number) => ((full - empty) * 1000) / n;
  const ctEntry = perEntry(base.cpu, start.ct);
  const ourEntry = perEntry(median(ourCli.map((x) => total(x.cpu))), start.cli);
  console.log(
    `    start (empty table): conntrack -L ${fmt(start.ct)} ms CPU, flowgrab ${fmt(start.cli)} ms CPU; per entry on top: conntrack -L ${fmt(ctEntry, 2)} µs, flowgrab ${fmt(ourEntry, 2)} µs CPU (${fmt(ourEntry / ctEntry, 2)}×: the ratio a larger table tends to)`,
  );
}

export async function benchConntrack(): Promise<void> {
  const ns = new BenchNetns();
  try {
    // The start costs first, on the table while it is empty.
    const start = process.env.FG_BENCH_ONLY !== 'events' ? startCosts(ns, cliArgvIn(ns)) : undefined;
    const secs = await ns.generate(ENTRIES, 0, 1);
    console.log(`created ${ns.count()} conntrack entries in ${fmt(secs, 2)} s (netns ${ns.name})`);
    // FG_BENCH_ONLY=dump or =events runs one half.
    if (start) await dumpBench(ns, start);
    ns.exec(['conntrack', '-F']);
    if (process.env.FG_BENCH_ONLY !== 'dump') await benchConntrackEvents(ns);
  } finally {
    ns.close();
  }
}
