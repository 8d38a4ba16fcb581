/**
 * Export benchmarks (issue 9), each against a baseline measured in the same run:
 *  1. encode rate of IPFIX and NetFlow v9 (goal ≥ 500 000 records/s) vs JSON.stringify of the same records;
 *  2. end to end: a UDP flood in a namespace → `flowgrab export` (the CLI, a process of its own) → nfcapd,
 *     records lost (goal 0);
 *  3. CPU per exported flow of that process vs softflowd (pcap) and ulogd2 (NFCT → IPFIX), both from
 *     Debian, running side by side on the same traffic, CPU read per process over the same window.
 * FG_BENCH_EXPORT_PART=encode|e2e runs one part; FG_BENCH_EXPORT_ROUNDS, _FLOWS, _RECORDS size them;
 * FG_BENCH_EXPORT_WARMUPS=N (default 2) floods unmeasured between the warm (2nd) and the settled (last) one.
 * To see what V8 does in each flood: FG_BENCH_EXPORT_NODE_ARGS="--trace-opt --trace-deopt" passes node options to
 * flowgrab's process, FG_BENCH_EXPORT_STDOUT=FILE keeps its stdout there and prints at which byte each flood starts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { netflow9Sink } from '../src/export/collector.js';
import { exportRecords } from '../src/export/exporter.js';
import type { ExportFlow } from '../src/export/flow.js';
import { IpfixEncoder } from '../src/export/ipfix.js';
import { Netflow9Encoder } from '../src/export/netflow9.js';
import type { ConntrackRecord } from '../src/sources/conntrack/record.js';
import { BenchNetns, benchRuns, fmt, median, procCpuMs, sh, verdict } from './lib.js';

const N = Number(process.env.FG_BENCH_EXPORT_RECORDS ?? 1_000_000);
const FLOWS = Number(process.env.FG_BENCH_EXPORT_FLOWS ?? 20_000);

function records(n: number): ExportFlow[] {
  const out: ExportFlow[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = i % 4 === 3;
    out.push({
      type: 'flow',
      family: v6 ? 'ipv6' : 'ipv4',
      protonum: i % 3 ? 6 : 17,
      proto: i % 3 ? 'tcp' : 'udp',
      src: v6 ? `fd77::${(i % 200) + 1}` : `192.168.77.${(i % 200) + 1}`,
      dst: v6 ? '2001:db8:77::10' : `198.51.${(i >> 8) % 256}.${i % 256}`,
      sport: 1024 + (i % 60000),
      dport: 443,
      packets: i % 1000,
      bytes: (i % 1000) * 700,
      rsrc: v6 ? '2001:db8:77::10' : `198.51.${(i >> 8) % 256}.${i % 256}`,
      rdst: v6 ? `fd77::${(i % 200) + 1}` : '198.51.100.1',
      rsport: 443,
      rdport: 1024 + (i % 60000),
      rpackets: i % 900,
      rbytes: (i % 900) * 1200,
      start: 1_700_000_000_000 + i,
      end: 1_700_000_005_000 + i,
      tcpFlags: 0x13,
      reason: 'end',
    });
  }
  return out;
}

function rate(run: () => number): number {
  const xs: number[] = [];
  for (let k = 0; k < benchRuns(); k++) {
    const t0 = process.hrtime.bigint();
    const n = run();
    xs.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return median(xs);
}

function encodeBench(): void {
  const recs = records(Math.min(N, 200_000));
  const rounds = Math.max(1, Math.round(N / recs.length));
  const flows = rounds * recs.length;
  const ipfixBytes = { n: 0 };
  const nf9Bytes = { n: 0 };
  const ipfix = new IpfixEncoder({}, (m) => {
    ipfixBytes.n += m.length;
  });
  const nf9 = new Netflow9Encoder({ bootMs: Date.now() - 1e7 }, (m) => {
    nf9Bytes.n += m.length;
  });
  const enc = (e: IpfixEncoder | Netflow9Encoder) => () => {
    for (let r = 0; r < rounds; r++) for (const f of recs) e.add(f);
    e.flush();
    return flows;
  };
  let jsonBytes = 0;
  const json = rate(() => {
    for (let r = 0; r < rounds; r++) for (const f of recs) jsonBytes += JSON.stringify(f).length;
    return flows;
  });
  const a = rate(enc(ipfix));
  const b = rate(enc(nf9));
  // Data records per flow: IPFIX biflow 1; NetFlow v9 1, or 2 when the flow has replies.
  const nf9PerFlow = nf9.counts.records / nf9.counts.flows;
  const per = (bytes: number, runs: number) => fmt(bytes / (runs * flows), 0);
  console.log(
    `export encode, ${flows} flows per run, median of ${benchRuns()} runs (bytes per flow on the wire in brackets)`,
  );
  console.log(`  JSON.stringify (baseline)    ${fmt(json / 1e3, 0)} k flows/s   [${per(jsonBytes, benchRuns())} B]`);
  console.log(
    `  IPFIX biflow                 ${fmt(a / 1e3, 0)} k flows/s = ${fmt(a / 1e3, 0)} k records/s   ratio ${fmt(a / json, 2)}× (goal ≥ 500 k records/s)   [${per(ipfixBytes.n, benchRuns())} B]`,
  );
  console.log(
    `  NetFlow v9 (uniflow)         ${fmt(b / 1e3, 0)} k flows/s = ${fmt((b * nf9PerFlow) / 1e3, 0)} k records/s   ratio ${fmt(b / json, 2)}× (goal ≥ 500 k records/s)   [${per(nf9Bytes.n, benchRuns())} B]`,
  );
}

/**
 * The export layers alone, in this process: DESTROY records (as the conntrack source gives them) through
 * exportRecords → FlowTracker → NetFlow v9 → a UDP socket to a local receiver, 500 records per event-loop
 * turn; process CPU from /proc per flow, median of the runs after one warm-up. What the end-to-end figure
 * costs beyond this is the conntrack source (netlink receive and decode).
 */
async function layersBench(): Promise<void> {
  const n = 100_000;
  const recs: ConntrackRecord[] = Array.from({ length: n }, (_, i) => ({
    type: 'destroy',
    id: i,
    family: 'ipv4',
    proto: 'udp',
    protonum: 17,
    orig: {
      src: `127.3.${(i >> 8) & 255}.${i & 255}`,
      dst: '127.0.0.9',
      sport: 40000 + (i % 20000),
      dport: 9,
      packets: 1,
      bytes: 29,
    },
    reply: {
      src: '127.0.0.9',
      dst: `127.3.${(i >> 8) & 255}.${i & 255}`,
      sport: 9,
      dport: 40000 + (i % 20000),
      packets: 0,
      bytes: 0,
    },
    status: ['CONFIRMED'],
    start: 1.7e12 + i,
    stop: 1.7e12 + i + 1000,
    ts: 1.7e12 + i + 1000,
  }));
  const rx = createSocket('udp4');
  rx.on('message', () => {});
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  const us: number[] = [];
  try {
    for (let run = 0; run <= benchRuns(); run++) {
      const src = new Subject<unknown>();
      const ex = exportRecords(src, netflow9Sink({ collector: `127.0.0.1:${rx.address().port}` }), {
        activeTimeoutS: 0,
      });
      await sleep(50);
      const c0 = procCpuMs();
      for (let i = 0; i < n; i += 500) {
        for (let j = i; j < i + 500; j++) src.next(recs[j]);
        await new Promise((r) => setImmediate(r));
      }
      await ex.close();
      if (run > 0) us.push(((procCpuMs() - c0) * 1000) / n); // run 0 warms up
      if (ex.stats().sink.sent !== n) throw new Error(`export layers: sent ${ex.stats().sink.sent} of ${n}`);
    }
  } finally {
    rx.close();
  }
  console.log(
    `  export layers alone (tracker → NetFlow v9 → UDP, in process, warm): ${fmt(median(us), 2)} µs CPU per flow, median of ${us.length} runs`,
  );
}

const dist = new URL('..', import.meta.url).pathname; // dist/
const flowgrabCli = process.env.FG_BENCH_EXPORT_CLI ?? join(dist, 'bin/flowgrab.js');
const ROUNDS = Number(process.env.FG_BENCH_EXPORT_ROUNDS ?? benchRuns());
/** Unmeasured floods between the warm one (the 2nd) and the settled one (the last, flood 3 + WARMUPS). */
const WARMUPS = Number(process.env.FG_BENCH_EXPORT_WARMUPS ?? 2);
/** The measured floods: the first after start, the second, and the last (flowgrab's JIT has settled by then). */
const PHASES = ['cold', 'warm', 'settled'] as const;
type Phase = (typeof PHASES)[number];
const perPhase = (): Record<Phase, number> => ({ cold: 0, warm: 0, settled: 0 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function inNs(ns: string | undefined, argv: string[]): [string, string[]] {
  // `ip netns exec` execs the command: the child's pid is the tool's own.
  return ns ? ['ip', ['netns', 'exec', ns, ...argv]] : [argv[0], argv.slice(1)];
}

function nfcapd(dir: string, port: number, netns?: string): ChildProcess {
  const [cmd, args] = inNs(netns, [
    'nfcapd',
    '-w',
    dir,
    '-p',
    String(port),
    '-b',
    '127.0.0.1',
    '-t',
    '3600',
    '-B',
    String(8 << 20),
  ]);
  return spawn(cmd, args, { stdio: 'ignore' });
}

async function stop(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  await done;
}

/**
 * Flows nfcapd stored in `dir`: all of them, and those to UDP port 9 of each flood, by the second octet of
 * their source 127.X.x.x (an exporter's own traffic is left out).
 */
function nfdumpFlows(dir: string): { all: number; flood: Map<number, number> } {
  let all = 0;
  const flood = new Map<number, number>();
  for (const f of readdirSync(dir).filter((x) => /^nfcapd\.\d+$/.test(x))) {
    const out = sh(['nfdump', '-r', join(dir, f), '-q', '-o', 'csv']);
    for (const l of out.split('\n')) {
      if (!/^\d{4}-/.test(l)) continue;
      all++;
      // csv: ts,te,td,sa,da,sp,dp,pr,…
      const c = l.split(',');
      if (c[6] !== '9' || c[7] !== 'UDP') continue;
      const octet = Number(c[4].split('.')[1]);
      flood.set(octet, (flood.get(octet) ?? 0) + 1);
    }
  }
  return { all, flood };
}

/**
 * CPU seconds a process used so far, all its threads, from the scheduler's
 * nanosecond accounting (/proc/PID/task/TID/schedstat): /proc/PID/stat
 * counts in 10 ms ticks, too coarse for an exporter that needs 30 ms.
 */
function cpuOf(pid: number | undefined): number {
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e9;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds per thread of a process, by thread name and id (Node 20 names every thread `node`: the
 * receive worker, V8's GC helpers and libuv's pool are told apart by id, the receive worker started last).
 */
function threadsOf(pid: number | undefined): Map<string, number> {
  const m = new Map<string, number>();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const name = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      const key = t === String(pid) ? 'main' : `${name}#${Number(t) - Number(pid)}`;
      m.set(key, (m.get(key) ?? 0) + ns / 1e9);
    }
  } catch {
    // gone
  }
  return m;
}

/** Flows of the flood still in the table. */
function floodLeft(ns: BenchNetns): number {
  try {
    return ns
      .exec(['conntrack', '-L', '-p', 'udp', '--dport', '9'])
      .split('\n')
      .filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

/** Waits until each of `pids` used under 2 ms of CPU per 100 ms for `quietMs` (at most `maxMs`): started up. */
async function quiet(pids: (number | undefined)[], quietMs: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = pids.map(cpuOf);
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(100);
    const now = pids.map(cpuOf);
    if (now.some((c, i) => c - last[i] > 0.002)) since = Date.now();
    else if (Date.now() - since >= quietMs) return;
    last = now;
  }
}

// flowgrab's conntrack source as the exporter subscribes to it (a dump, then DESTROY events), records dropped
// after counting the flood's: a floor that saw nothing would be an idle process (once it was: a dead worker).
const SOURCE_ONLY = `
const { conntrack } = await import(${JSON.stringify(join(dist, 'src/sources/conntrack/source.js'))});
let n = 0;
conntrack({ netns: process.argv[1], dump: true, events: ['destroy'] }).subscribe({
  next: (r) => { if (r.type === 'destroy' && r.orig.dport === 9) n++; },
  error: (e) => console.error('source error:', e.message),
});
process.on('SIGTERM', () => { console.error('source_records=' + n); process.exit(0); });
`;

const ULOGD_CONF = (dir: string, port: number) => `[global]
logfile="${join(dir, 'ulogd.log')}"
loglevel=5
plugin="/usr/lib/x86_64-linux-gnu/ulogd/ulogd_inpflow_NFCT.so"
plugin="/usr/lib/x86_64-linux-gnu/ulogd/ulogd_output_IPFIX.so"
stack=ct1:NFCT,ipfix1:IPFIX

[ct1]
# DESTROY events only (they carry the counters), no hash table: the cheapest NFCT setup.
hash_enable=0
event_mask=0x00000004
netlink_socket_buffer_size=16777216
netlink_socket_buffer_maxsize=33554432

[ipfix1]
oid=1
host="127.0.0.1"
port=${port}
proto="udp"
send_template="once"
`;

/** Why ulogd2 cannot take part here, or undefined when it can. */
function ulogdMissing(): string | undefined {
  for (const f of [
    '/usr/sbin/ulogd',
    '/usr/lib/x86_64-linux-gnu/ulogd/ulogd_inpflow_NFCT.so',
    '/usr/lib/x86_64-linux-gnu/ulogd/ulogd_output_IPFIX.so',
  ])
    if (!existsSync(f)) return `${f} is not installed`;
  return undefined;
}

interface Exporter {
  name: string;
  what: string;
  proc: ChildProcess;
  dir: string;
  collector: ChildProcess;
  /** CPU seconds per measured flood. */
  cpu: Record<Phase, number>;
  /** Flows of each measured flood stored by its collector. */
  stored: Record<Phase, number>;
  storedAll: number;
  log: string;
}

interface Round {
  secs: number;
  elapsed: number;
  exporters: Exporter[];
  flowgrabSent: number;
  flowgrabDropped: number;
  flowgrabEnded: number;
  /** CPU of flowgrab's conntrack source alone (DESTROY events, records dropped) over the same windows. */
  sourceCpu: Record<Phase, number>;
  /** DESTROY records of the floods that source delivered (every flood). */
  sourceRecords: number;
}

/**
 * One round: the three exporters run side by side on the same flood in the same namespace, and
 * the CPU each used from the first datagram until 2 s after the flood's last conntrack entry went
 * (every flow ended and exported) is read from /proc for that process alone (all its threads). Startup and shutdown are
 * outside the window for all three.
 */
async function round(ns: BenchNetns, base: number, portBase: number): Promise<Round> {
  const exporters: Exporter[] = [];
  const tmp = (name: string) => mkdtempSync(join(tmpdir(), `fg-bench-export-${name}-`));
  const add = (name: string, what: string, port: number, collectorNs: string | undefined, argv: string[]) => {
    const dir = tmp(name);
    const collector = nfcapd(dir, port, collectorNs);
    exporters.push({
      name,
      what,
      dir,
      collector,
      proc: undefined as unknown as ChildProcess,
      cpu: perPhase(),
      stored: perPhase(),
      storedAll: 0,
      log: '',
    });
    return argv;
  };
  let source: ChildProcess | undefined;
  try {
    // flowgrab: the CLI as a process of its own, as a user runs it (conntrack of the namespace, collector outside it).
    // FG_BENCH_EXPORT_PROF=DIR: a V8 CPU profile of the flowgrab CLI, written there when it stops.
    const prof = process.env.FG_BENCH_EXPORT_PROF
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.FG_BENCH_EXPORT_PROF]
      : [];
    prof.push(...(process.env.FG_BENCH_EXPORT_NODE_ARGS?.split(' ').filter(Boolean) ?? []));
    const fgArgv = add('flowgrab', 'conntrack DESTROY events → NetFlow v9', portBase, undefined, [
      process.execPath,
      ...prof,
      flowgrabCli,
      'export',
      '--netflow9',
      `127.0.0.1:${portBase}`,
      '--netns',
      ns.name,
      '--active-timeout',
      '0',
      // FG_BENCH_EXPORT_ARGS: more options for flowgrab export (e.g. --mtu 8000), to see what they change.
      ...(process.env.FG_BENCH_EXPORT_ARGS?.split(' ').filter(Boolean) ?? []),
    ]);
    const softArgv = add('softflowd', 'pcap on lo → NetFlow v9', portBase + 1, ns.name, [
      'softflowd',
      '-i',
      'lo',
      '-n',
      `127.0.0.1:${portBase + 1}`,
      '-v',
      '9',
      '-d',
      '-t',
      'udp=1',
      '-t',
      'expint=1',
      'udp and dst port 9',
    ]);
    const missing = ulogdMissing();
    let ulogArgv: string[] | undefined;
    if (!missing) {
      ulogArgv = add('ulogd2', 'NFCT DESTROY events → IPFIX', portBase + 2, ns.name, ['ulogd', '-c', '']);
      const conf = join(exporters[2].dir, 'ulogd.conf');
      writeFileSync(conf, ULOGD_CONF(exporters[2].dir, portBase + 2));
      ulogArgv[2] = conf;
    }
    await sleep(500);
    const argvs = [fgArgv, softArgv, ulogArgv];
    for (let i = 0; i < exporters.length; i++) {
      const argv = argvs[i] as string[];
      const [cmd, args] = exporters[i].name === 'flowgrab' ? [argv[0], argv.slice(1)] : inNs(ns.name, argv);
      const out =
        i === 0 && process.env.FG_BENCH_EXPORT_STDOUT ? openSync(process.env.FG_BENCH_EXPORT_STDOUT, 'w') : 'ignore';
      const p = spawn(cmd, args, { stdio: ['ignore', out, 'pipe'] });
      if (typeof out === 'number') closeSync(out); // the child has its own
      const e = exporters[i];
      p.stderr?.on('data', (d: Buffer) => {
        e.log = (e.log + d.toString()).slice(-4000);
      });
      e.proc = p;
    }
    // The floor: flowgrab's conntrack source alone, the same events decoded into records and dropped.
    source = spawn(process.execPath, ['--input-type=module', '-e', SOURCE_ONLY, ns.name], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let sourceLog = '';
    source.stderr?.on('data', (d: Buffer) => {
      sourceLog = (sourceLog + d.toString()).slice(-4000);
    });
    const sourceCpu = perPhase();
    const pids = [...exporters.map((e) => e.proc.pid), source.pid];
    await quiet(pids, 300, 15_000);
    for (const e of exporters) if (e.proc.exitCode !== null) throw new Error(`${e.name} exited at start: ${e.log}`);
    // Floods: the first meets every exporter freshly started (flowgrab's JIT compiles as it goes); the second
    // runs them warm, though V8 still compiles and re-optimizes during it; after FG_BENCH_EXPORT_WARMUPS more
    // (unmeasured), the last runs them settled, as an exporter runs for days. Each flood's flows are told
    // apart by their addresses: flood k (from 0) comes from 127.(base + k).x.x.
    const t0 = Date.now();
    let secs = 0;
    const phases: (Phase | 'warmup')[] = ['cold', 'warm', ...Array<'warmup'>(WARMUPS).fill('warmup'), 'settled'];
    const octets = new Map<Phase, number>();
    for (const [k, phase] of phases.entries()) {
      const c0 = exporters.map((e) => cpuOf(e.proc.pid));
      const s0 = cpuOf(source.pid);
      const th0 = threadsOf(exporters[0].proc.pid);
      if (process.env.FG_BENCH_EXPORT_STDOUT)
        console.log(
          `    flood ${k} (${phase}) starts at stdout byte ${statSync(process.env.FG_BENCH_EXPORT_STDOUT).size}`,
        );
      const octet = base + k;
      if (phase !== 'warmup') octets.set(phase, octet);
      secs = await ns.generate(FLOWS, 0, octet);
      // Every flow ends after the 1 s UDP timeout; conntrack's garbage collector reaps them over a few seconds.
      const deadline = Date.now() + 60_000;
      while (floodLeft(ns) > 0 && Date.now() < deadline) await sleep(300);
      // Then time to export the last ones (softflowd expires every second; flowgrab waits ≤ 100 ms to fill a datagram).
      await sleep(2000);
      if (phase === 'warmup') continue;
      exporters.forEach((e, i) => {
        e.cpu[phase] = cpuOf(e.proc.pid) - c0[i];
      });
      sourceCpu[phase] = cpuOf(source.pid) - s0;
      // FG_BENCH_EXPORT_THREADS=1: where flowgrab's CPU went, by thread.
      if (process.env.FG_BENCH_EXPORT_THREADS)
        console.log(
          `    flowgrab ${phase}, CPU by thread: ${[...threadsOf(exporters[0].proc.pid)]
            .map(([k, v]) => [k, (v - (th0.get(k) ?? 0)) * 1e3] as const)
            .filter(([, ms]) => ms >= 0.5)
            .map(([k, ms]) => `${k} ${fmt(ms, 1)} ms`)
            .join(', ')}`,
        );
    }
    const elapsed = (Date.now() - t0) / 1000;
    for (const e of exporters) await stop(e.proc);
    await stop(source);
    const sourceRecords = Number(/source_records=(\d+)/.exec(sourceLog)?.[1] ?? 0);
    if (sourceRecords === 0) throw new Error(`the source-only floor delivered no records: ${sourceLog}`);
    await sleep(300);
    for (const e of exporters) {
      await stop(e.collector);
      const n = nfdumpFlows(e.dir);
      for (const ph of PHASES) e.stored[ph] = n.flood.get(octets.get(ph) ?? -1) ?? 0;
      e.storedAll = n.all;
    }
    const fg = exporters[0].log;
    const num = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(fg)?.[1] ?? Number.NaN);
    return {
      secs,
      elapsed,
      exporters,
      flowgrabSent: num('sent'),
      flowgrabDropped: num('dropped'),
      flowgrabEnded: num('tracker_ended'),
      sourceCpu,
      sourceRecords,
    };
  } finally {
    if (source) await stop(source, 'SIGKILL');
    for (const e of exporters) {
      if (e.proc) await stop(e.proc, 'SIGKILL');
      await stop(e.collector, 'SIGKILL');
      rmSync(e.dir, { recursive: true, force: true });
    }
  }
}

async function endToEnd(): Promise<void> {
  const ns = new BenchNetns();
  const portBase = 30_000 + ((process.pid * 3) % 20_000);
  try {
    // conntrack counts the ICMP and UDP of the collectors too; only the flood's flows are counted below.
    ns.exec(['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=1']);
    const rounds: Round[] = [];
    // Each round's floods come from addresses of their own (127.base.x.x up): see round().
    const floods = 3 + WARMUPS;
    if (3 + floods * ROUNDS > 255) throw new Error('FG_BENCH_EXPORT_ROUNDS × floods per round: out of 127.x addresses');
    for (let r = 0; r < ROUNDS; r++) rounds.push(await round(ns, 3 + floods * r, portBase + 3 * r));
    const settledFlood = 3 + WARMUPS;
    console.log(
      `export end to end: ${ROUNDS} rounds of ${settledFlood} floods of ${FLOWS} UDP flows (one datagram each, no reply), measured: the 1st (cold), the 2nd (warm) and the ${settledFlood}th (settled); the exporters side by side on the same traffic`,
    );
    for (const [i, r] of rounds.entries()) {
      const fg = r.exporters[0];
      console.log(
        `  round ${i + 1}: last flood ${fmt(r.secs, 2)} s, window ${fmt(r.elapsed, 1)} s; flowgrab: ${r.flowgrabEnded} flows ended, ${r.flowgrabSent} records sent, ${r.flowgrabDropped} dropped, ${fg.storedAll} stored, lost ${r.flowgrabSent - fg.storedAll} (goal 0); source alone: ${r.sourceRecords} of ${settledFlood * FLOWS} flood DESTROYs`,
      );
      for (const phase of PHASES)
        console.log(
          `    ${phase}: ${r.exporters.map((e) => `${e.name} ${fmt(e.cpu[phase], 3)} s CPU / ${e.stored[phase]} flows = ${fmt((e.cpu[phase] / Math.max(e.stored[phase], 1)) * 1e6, 1)} µs`).join('; ')}`,
        );
    }
    const perFlow = (name: string, phase: Phase) =>
      median(
        rounds.map((r) => {
          const e = r.exporters.find((x) => x.name === name);
          return e ? (e.cpu[phase] / Math.max(e.stored[phase], 1)) * 1e6 : Number.NaN;
        }),
      );
    console.log(
      '  CPU per exported flow, median of rounds (each process alone, all its threads, over the same window: flood until 2 s after its last conntrack entry went):',
    );
    console.log(
      `                      settled (flood ${settledFlood})   warm (2nd flood)   cold (1st flood after start)`,
    );
    const cols = (f: (phase: Phase) => number) =>
      (['settled', 'warm', 'cold'] as const).map((ph) => `${fmt(f(ph), 1).padStart(7)} µs`).join('         ');
    const row = (name: string, note: string) =>
      console.log(`    ${name.padEnd(16)}  ${cols((ph) => perFlow(name, ph))}     ${note}`);
    row('flowgrab', '(flowgrab export CLI: netlink DESTROY events, decode, tracking, NetFlow v9 encoding, sending)');
    const floor = (phase: Phase) => median(rounds.map((r) => (r.sourceCpu[phase] / FLOWS) * 1e6));
    console.log(
      `      of which source ${cols(floor)}     (flowgrab's conntrack source alone in a process of its own, the same DESTROYs: receive worker, decode and the feed's bookkeeping; the rest is tracking, encoding and sending)`,
    );
    for (const r0 of rounds[0].exporters.slice(1)) {
      const missed = median(rounds.map((r) => FLOWS - (r.exporters.find((x) => x.name === r0.name)?.stored.warm ?? 0)));
      const ratios = (['settled', 'warm', 'cold'] as const)
        .map((ph) => `${ph} ${fmt(perFlow('flowgrab', ph) / perFlow(r0.name, ph), 2)}×`)
        .join(', ');
      row(r0.name, `(${r0.what}; missed ${missed} of ${FLOWS} per flood, median)   flowgrab/${r0.name}: ${ratios}`);
    }
    const why = ulogdMissing();
    if (!why)
      for (const ph of ['settled', 'warm'] as const) {
        const ratio = perFlow('flowgrab', ph) / perFlow('ulogd2', ph);
        console.log(
          `  flowgrab/ulogd2 CPU per exported flow, ${ph === 'settled' ? `settled (flood ${settledFlood}: V8 done compiling)` : 'warm (2nd flood: V8 still compiling)'}: ${fmt(ratio, 2)}× (goal ≤ 1.0×: ${verdict(ratio <= 1)}; rounds: FG_BENCH_EXPORT_ROUNDS or --runs)`,
        );
      }
    if (why) console.log(`    ulogd2            not measured: ${why}`);
    else
      console.log(
        '    (ulogd2 keeps a partly filled IPFIX message until it fills and drops it at exit: up to one message of flows missed per round)',
      );
  } finally {
    ns.close();
  }
}

export async function benchExport(): Promise<void> {
  if (process.env.FG_BENCH_EXPORT_PART !== 'e2e') {
    encodeBench();
    await layersBench();
  }
  if (process.env.FG_BENCH_EXPORT_PART !== 'encode') await endToEnd();
}
