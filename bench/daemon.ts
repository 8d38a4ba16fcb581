/**
 * flowgrabd benchmark (issue 7). One daemon (a child process, so its CPU is
 * its own) serves the same conntrack graph to 1 client, then to 16. Both runs
 * see the same load: new UDP flows at a steady 5 000/s inside a throw-away
 * namespace.
 *  1. daemon CPU (every thread's, from /proc/PID/task/TID/schedstat) with 16 clients ÷ with 1 (goal ≤ 2×)
 *  2. latency from the packet that made the flow (send time, per flow) to the
 *     client's receipt of its NEW record, p50/p99 (goal p99 ≤ 5 ms at 5 000 events/s)
 * Send and receive times are CLOCK_MONOTONIC (process.hrtime), one clock for
 * every process on the machine. The kernel emits the NEW event inside the
 * sender's sendmsg(), so the send time is the kernel event time to within
 * a few microseconds. Each case runs `--runs N` times (default 5); figures
 * are medians over the runs. The daemon's GC pauses (--trace-gc) are listed
 * beside the latencies, and where the latency goes: daemon-trace.ts (loaded
 * into the daemon) stamps each record on its way through the daemon, and
 * keeps the daemon's event-loop delay. The daemon runs with the node options
 * flowgrabd is started with (bin/flowgrabd). The load average is printed
 * with the figures: on a shared machine, latency is mostly its scheduling.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchNetns, benchRuns, fmt, median, procCpuMs, verdict } from './lib.js';

const RATE = Number(process.env.FG_BENCH_DAEMON_RATE ?? 5000);
const SECONDS = Number(process.env.FG_BENCH_DAEMON_SECONDS ?? 4);
const WARMUP = 500;
/** The 16 clients share this many processes (4 connections each): 16 Node processes would swamp 2 CPUs. */
const CLIENT_PROCESSES = 4;
const dist = new URL('..', import.meta.url).pathname; // dist/
const flowgrabd = join(dist, 'src/cli/flowgrabd.js');
const traceModule = new URL('./daemon-trace.js', import.meta.url).href;

interface GcPause {
  scavenge: boolean;
  ms: number;
}

/** "N scavenges, p99 X ms, max Y ms, Z ms in all" over pauses of one kind. */
function gcSummary(pauses: GcPause[], kind: string): string {
  if (pauses.length === 0) return `0 ${kind}`;
  const ms = Float64Array.from(pauses, (p) => p.ms).sort();
  const total = ms.reduce((a, b) => a + b, 0);
  return `${ms.length} ${kind}, p99 ${fmt(quantile(ms, 0.99) ?? 0, 1)} ms, max ${fmt(ms[ms.length - 1], 1)} ms, ${fmt(total, 0)} ms in all`;
}

/** The V8 flags bin/flowgrabd (the installed `flowgrabd`) starts node with: the daemon is measured as it runs. */
function shippedNodeFlags(): string {
  const script = join(dist, '..', 'bin', 'flowgrabd');
  const m = existsSync(script) ? /^FLOWGRABD_V8_FLAGS="(.*)"$/m.exec(readFileSync(script, 'utf8')) : null;
  if (!m) throw new Error(`${script}: no FLOWGRABD_V8_FLAGS line`);
  return m[1];
}

// New UDP flows at a steady rate: every millisecond, as many datagrams as the
// schedule owes (not bursts of hundreds). Prints the send time of each flow,
// in ns of CLOCK_MONOTONIC, as base64 Float64Array indexed like the addresses.
const GENERATOR = `
const [count, rate, base] = process.argv.slice(1).map(Number);
const s = require('node:dgram').createSocket('udp4');
const x = Buffer.from('x');
const sent = new Float64Array(count);
const addr = (i) => '127.' + (base + Math.floor(i / 65024)) + '.' + (Math.floor(i / 254) % 256) + '.' + ((i % 254) + 1);
const t0 = process.hrtime.bigint();
let i = 0;
const tick = () => {
  const due = Math.min(count, Math.ceil((Number(process.hrtime.bigint() - t0) / 1e9) * rate));
  for (; i < due; i++) { sent[i] = Number(process.hrtime.bigint()); s.send(x, 9, addr(i)); }
  if (i < count) setTimeout(tick, 1);
  else setTimeout(() => { s.close(); process.stdout.write(Buffer.from(sent.buffer).toString('base64') + '\\n'); }, 50);
};
tick();
`;

// K connections to flowgrabd, each with one flow of GRAPH. Records of flows to
// 127.BASE.x.y are kept as (flow index, receive time, ms since the daemon
// decoded it); "report" on stdin prints the counts per connection and those
// triples (base64 Float64Array), then forgets them. MODE "flowgrab" uses
// connect() (records parsed, as an application gets them; compact frames),
// "flowgrab-json" the same with JSON record frames; "raw" speaks
// the frame protocol and scans records with a regex: a reader that costs
// next to nothing, so what it sees is the daemon's own delivery.
const CLIENTS = `
const [dist, socket, k, graph, base, mode] = process.argv.slice(1);
const B = Number(base);
const note = (st, t, b2, b3, b4, ts) => { st.got++; if (b2 === B) st.pairs.push(b3 * 254 + b4 - 1, t, Date.now() - ts); };
async function viaFlowgrab(st) {
  const { connect } = await import(dist + '/src/daemon/client.js');
  const fg = await connect(socket);
  // flowgrab-json: the same client taking records as JSON frames (a hello asking for them), not compact ones.
  if (mode === 'flowgrab-json') await fg.request({ op: 'hello', records: 'json' });
  const flow = fg.create({ bufferRecords: 100000 });
  flow.populate(graph);
  await flow.instantiate();
  // The last three numbers of orig.dst without a string or an array per record: the bench's own reading of a
  // record should cost next to nothing, as the raw clients' regex does, so what is measured is the library's.
  let p1 = 0, p2 = 0, p3 = 0;
  const octets = (s) => {
    let part = 0, v = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 46) v = v * 10 + c - 48;
      else { if (part === 1) p1 = v; else if (part === 2) p2 = v; part++; v = 0; }
    }
    p3 = v;
  };
  flow.records$.subscribe((r) => {
    const t = Number(process.hrtime.bigint());
    octets(r.orig.dst);
    note(st, t, p1, p2, p3, r.ts);
  });
  flow.lost$.subscribe((n) => (st.lost += n.count ?? 0));
  await flow.activate();
  return () => fg.close();
}
const RECORD = /"dst":"127\\.(\\d+)\\.(\\d+)\\.(\\d+)","sport":\\d+,"dport":9\\}.*?"ts":(\\d+)/g;
async function viaFrames(st) {
  const sock = (await import('node:net')).createConnection(socket);
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const waiting = new Map();
  let buf = Buffer.alloc(0), id = 0;
  sock.on('data', (d) => {
    const t = Number(process.hrtime.bigint());
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const body = buf.toString('utf8', 4, 4 + buf.readUInt32BE(0));
      buf = buf.subarray(4 + buf.readUInt32BE(0));
      if (body.startsWith('{"v":1,"ev":"records"')) {
        st.frames++;
        for (const m of body.matchAll(RECORD)) note(st, t, Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
      } else {
        const msg = JSON.parse(body);
        if (msg.ev === 'lost') st.lost += msg.notice?.count ?? 0;
        else if ('id' in msg) waiting.get(msg.id)?.(msg);
      }
    }
  });
  const call = (body) => new Promise((resolve, reject) => {
    const n = ++id;
    waiting.set(n, (m) => (m.ok ? resolve(m) : reject(new Error(JSON.stringify(m.error)))));
    const f = Buffer.from(JSON.stringify({ v: 1, id: n, ...body }));
    const h = Buffer.alloc(4); h.writeUInt32BE(f.length);
    sock.write(Buffer.concat([h, f]));
  });
  await call({ op: 'hello' });
  const { flow } = await call({ op: 'create', bufferRecords: 100000 });
  await call({ op: 'populate', flow, graph });
  await call({ op: 'instantiate', flow });
  await call({ op: 'activate', flow });
  return () => sock.end();
}
const conns = [];
for (let c = 0; c < Number(k); c++) {
  const st = { got: 0, lost: 0, frames: 0, pairs: [] };
  st.close = await (mode === 'raw' ? viaFrames(st) : viaFlowgrab(st));
  conns.push(st);
}
process.stdout.write(JSON.stringify({ ready: conns.length }) + '\\n');
let buf = '';
process.stdin.on('data', async (d) => {
  buf += d;
  for (let nl; (nl = buf.indexOf('\\n')) >= 0; ) {
    const cmd = buf.slice(0, nl); buf = buf.slice(nl + 1);
    if (cmd === 'report') {
      const pairs = new Float64Array(conns.flatMap((c) => c.pairs));
      const out = { got: conns.map((c) => c.got), lost: conns.map((c) => c.lost), frames: conns.map((c) => c.frames), pairs: Buffer.from(pairs.buffer).toString('base64') };
      for (const c of conns) c.pairs = [];
      process.stdout.write(JSON.stringify(out) + '\\n');
    } else if (cmd === 'quit') {
      for (const c of conns) await Promise.resolve(c.close()).catch(() => {});
      process.exit(0);
    }
  }
});
`;

/** A child speaking NDJSON on stdout, answering lines on stdin. */
class LineChild {
  readonly child: ChildProcess;
  private lines: string[] = [];
  private partial = '';
  private err = '';
  private wake?: () => void;

  constructor(argv: string[]) {
    this.child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      const parts = (this.partial + d.toString()).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts.filter(Boolean));
      this.wake?.();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
    this.child.on('exit', () => this.wake?.());
  }

  async next<T>(timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.length) {
      if (this.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`child ${this.child.exitCode !== null ? 'exited' : 'silent'}: ${this.err.slice(-800)}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 200);
      });
    }
    return JSON.parse(this.lines.shift()!) as T;
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }
}

interface Report {
  got: number[];
  /** Record frames received (raw clients only). */
  frames: number[];
  lost: number[];
  pairs: string;
}

/** CPU (every thread) the process has used, ms, from /proc (lib.ts). */
const cpuTicks = (pid: number) => procCpuMs(pid);
const TICK_MS = 1;

function generate(ns: BenchNetns, count: number, base: number): Promise<Float64Array> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', [
      'netns',
      'exec',
      ns.name,
      process.execPath,
      '-e',
      GENERATOR,
      String(count),
      String(RATE),
      String(base),
    ]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`generator exited ${code}`));
      const b = Buffer.from(out.trim(), 'base64');
      resolve(new Float64Array(b.buffer, b.byteOffset, b.length / 8));
    });
  });
}

const quantile = (sorted: Float64Array, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

interface RunResult {
  mode: Mode;
  clients: number;
  events: number;
  cpuMs: number;
  delivered: number;
  lost: number;
  p50: number;
  p99: number;
  max: number;
  /** From the daemon decoding the record (its `ts`, ms resolution) to the client's receipt. */
  daemonToClientP50: number;
  daemonToClientP99: number;
  /** CPU of all client processes together during the run. */
  clientCpuMs: number;
  /** Record frames the clients received (raw clients count them). */
  frames?: number;
  /** Median and p99 (ms) of each stage of a record's way (daemon-trace.ts). */
  stages?: Record<Stage, { p50: number; p99: number }>;
  /** The daemon's event-loop delay (ms). */
  loopDelay?: Trace['loopDelay'];
}

/** What daemon-trace.ts writes on SIGUSR2. */
interface Trace {
  loopDelay: { p50: number; p99: number; max: number };
  /** base64 Float64Array of [key, push, drain, flush, written] (ns). */
  stamps: string;
}

const STAGES = ['send→flow', 'flow→drain', 'drain→flush', 'flush→written', 'written→client'] as const;
type Stage = (typeof STAGES)[number];

/** Each stage's p50/p99 over the run's records (written→client over every client's receipt). */
function stages(
  t: Trace,
  base: number,
  events: number,
  sent: Float64Array,
  reports: Report[],
): Record<Stage, { p50: number; p99: number }> {
  const b = Buffer.from(t.stamps, 'base64');
  const flat = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
  const byIndex = new Map<number, Float64Array>();
  for (let i = 0; i < flat.length; i += 5) {
    const idx = flat[i] - base * 65536;
    if (idx >= 0 && idx < events) byIndex.set(idx, flat.subarray(i + 1, i + 5));
  }
  const lists: number[][] = STAGES.map(() => []);
  for (const [idx, s] of byIndex) {
    const points = [sent[idx], s[0], s[1], s[2], s[3]];
    for (let j = 0; j < 4; j++) {
      const d = (points[j + 1] - points[j]) / 1e6;
      if (Number.isFinite(d)) lists[j].push(d);
    }
  }
  for (const r of reports) {
    const pb = Buffer.from(r.pairs, 'base64');
    const pairs = new Float64Array(pb.buffer, pb.byteOffset, pb.length / 8);
    for (let i = 0; i < pairs.length; i += 3) {
      const w = byIndex.get(pairs[i])?.[3];
      if (w !== undefined && Number.isFinite(w)) lists[4].push((pairs[i + 1] - w) / 1e6);
    }
  }
  const out = {} as Record<Stage, { p50: number; p99: number }>;
  STAGES.forEach((name, j) => {
    const sorted = Float64Array.from(lists[j]).sort();
    out[name] = { p50: quantile(sorted, 0.5) ?? Number.NaN, p99: quantile(sorted, 0.99) ?? Number.NaN };
  });
  return out;
}

type Mode = 'flowgrab' | 'flowgrab-json' | 'raw';

/** FG_BENCH_DAEMON_CLIENT_PROF=DIR: a V8 CPU profile of each client process, written there when it quits. */
/** FG_BENCH_DAEMON_CLIENT_NODE_ARGS: more node options for the client processes (e.g. an --import of a profiler). */
const clientProf = [
  ...(process.env.FG_BENCH_DAEMON_CLIENT_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.FG_BENCH_DAEMON_CLIENT_PROF]
    : []),
  ...(process.env.FG_BENCH_DAEMON_CLIENT_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
];

async function run(
  ns: BenchNetns,
  socket: string,
  daemonPid: number,
  mode: Mode,
  clients: number,
  base: number,
  trace: () => Promise<Trace>,
): Promise<RunResult> {
  const procs = Math.min(clients, CLIENT_PROCESSES);
  const graph = `conntrack(events=[new], netns=${ns.name})`;
  const children = Array.from(
    { length: procs },
    () =>
      new LineChild([
        process.execPath,
        ...clientProf,
        '--input-type=module',
        '-e',
        CLIENTS,
        dist,
        socket,
        String(clients / procs),
        graph,
        String(base),
        mode,
      ]),
  );
  const report = async () => {
    for (const c of children) c.send('report');
    return Promise.all(children.map((c) => c.next<Report>()));
  };
  const total = (rs: Report[]) => rs.flatMap((r) => r.got);
  try {
    await Promise.all(children.map((c) => c.next<{ ready: number }>()));
    // Warm-up on other addresses, until every client has it all.
    await generate(ns, WARMUP, base + 100);
    for (let i = 0; i < 50 && Math.min(...total(await report())) < WARMUP; i++)
      await new Promise((r) => setTimeout(r, 100));
    const frames = (rs: Report[]) => rs.flatMap((r) => r.frames).reduce((a, b) => a + b, 0);
    const frames0 = frames(await report()); // and forget the warm-up

    const events = RATE * SECONDS;
    if (events > 65024) throw new Error('the clients index flows within one 127.BASE.0.0/16 block: at most 65024');
    const reports: Report[] = [];
    let lost = 0;
    let framesSent = 0;
    const poll = async () => {
      const rs = await report();
      reports.push(...rs);
      lost = rs.flatMap((r) => r.lost).reduce((a, b) => a + b, 0); // counts are cumulative
      framesSent = frames(rs) - frames0;
      return total(rs);
    };
    await trace(); // and forget the warm-up's stamps
    const cpu0 = cpuTicks(daemonPid);
    const clientCpu = () => children.reduce((a, c) => a + cpuTicks(c.child.pid!), 0);
    const ccpu0 = clientCpu();
    const sent = await generate(ns, events, base);
    let got = await poll();
    for (let i = 0; i < 100 && Math.min(...got) < WARMUP + events; i++) {
      await new Promise((r) => setTimeout(r, 50));
      got = await poll();
    }
    const cpuMs = (cpuTicks(daemonPid) - cpu0) * TICK_MS;
    const clientCpuMs = (clientCpu() - ccpu0) * TICK_MS;
    const t = await trace();
    return {
      ...summarize(mode, clients, events, cpuMs, sent, reports, lost, clientCpuMs),
      frames: framesSent,
      stages: stages(t, base, events, sent, reports),
      loopDelay: t.loopDelay,
    };
  } finally {
    for (const c of children) c.send('quit');
    await Promise.all(
      children.map((c) => new Promise((r) => (c.child.exitCode !== null ? r(0) : c.child.once('exit', r)))),
    );
  }
}

function summarize(
  mode: Mode,
  clients: number,
  events: number,
  cpuMs: number,
  sent: Float64Array,
  reports: Report[],
  lost: number,
  clientCpuMs: number,
): RunResult {
  const lat: number[] = [];
  const fromDaemon: number[] = [];
  for (const r of reports) {
    const b = Buffer.from(r.pairs, 'base64');
    const pairs = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
    for (let i = 0; i < pairs.length; i += 3) {
      if (pairs[i] >= events) continue;
      lat.push((pairs[i + 1] - sent[pairs[i]]) / 1e6);
      fromDaemon.push(pairs[i + 2]);
    }
  }
  const sorted = Float64Array.from(lat).sort();
  const tail = Float64Array.from(fromDaemon).sort();
  return {
    mode,
    clients,
    events,
    cpuMs,
    delivered: lat.length,
    lost,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    daemonToClientP50: quantile(tail, 0.5),
    daemonToClientP99: quantile(tail, 0.99),
    clientCpuMs,
  };
}

export async function benchDaemon(): Promise<void> {
  const ns = new BenchNetns();
  const dir = mkdtempSync(join(tmpdir(), 'fgbenchd'));
  const socket = join(dir, 'flowgrab.sock');
  const policy = join(dir, 'policy.json');
  const traceFile = join(dir, 'trace.json');
  writeFileSync(policy, JSON.stringify({ version: 1, principals: [] })); // root may do anything
  // FG_BENCH_DAEMON_PROF=DIR: a V8 CPU profile of the daemon, written there when it stops.
  const prof = process.env.FG_BENCH_DAEMON_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.FG_BENCH_DAEMON_PROF]
    : [];
  // The daemon runs with the V8 flags bin/flowgrabd gives it, unless
  // FG_BENCH_DAEMON_NODE_ARGS says otherwise, e.g. "--max-semi-space-size=32" (or "" for Node's defaults).
  const nodeArgs = (process.env.FG_BENCH_DAEMON_NODE_ARGS ?? shippedNodeFlags()).split(/\s+/).filter(Boolean);
  // FG_BENCH_DAEMON_ARGS: more flowgrabd options, e.g. "--receive-linger 1" (the library's linger) to compare.
  const daemonArgs = (process.env.FG_BENCH_DAEMON_ARGS ?? '').split(/\s+/).filter(Boolean);
  // The daemon's scavenges (--trace-gc on its stdout): their pauses are one place a p99 goes.
  // daemon-trace.ts stamps each record's way through the daemon and keeps its event-loop delay.
  const daemon = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--trace-gc',
      '--import',
      traceModule,
      ...prof,
      flowgrabd,
      '--socket',
      socket,
      '--policy',
      policy,
      ...daemonArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FG_BENCH_DAEMON_TRACE: traceFile } },
  );
  /** Each pause with its kind: a scavenge's and a full collection's are different stories. */
  let gcPauses: GcPause[] = [];
  let gcPartial = '';
  /** Asks daemon-trace.ts for what it stamped since the last time. */
  const trace = async (): Promise<Trace> => {
    daemon.kill('SIGUSR2');
    for (let i = 0; i < 400 && !existsSync(traceFile); i++) await new Promise((r) => setTimeout(r, 25));
    if (!existsSync(traceFile)) throw new Error('flowgrabd did not answer SIGUSR2 with its trace within 10 s');
    const t = JSON.parse(readFileSync(traceFile, 'utf8')) as Trace;
    rmSync(traceFile);
    return t;
  };
  daemon.stdout!.on('data', (d: Buffer) => {
    const lines = (gcPartial + d.toString()).split('\n');
    gcPartial = lines.pop() ?? '';
    for (const l of lines) {
      // "[pid:0x…]  1234 ms: Scavenge 5.1 (6.2) -> 4.3 (7.2) MB, pooled: 0 MB, 1.23 / 0.00 ms  (average mu = …"
      const m = /: (Scavenge|Mark-Compact|Mark-sweep)\b.*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(l);
      if (m) gcPauses.push({ scavenge: m[1] === 'Scavenge', ms: Number(m[2]) });
    }
  });
  let daemonLog = '';
  daemon.stderr!.on('data', (d: Buffer) => (daemonLog = (daemonLog + d.toString()).slice(-4000)));
  try {
    for (let i = 0; i < 600 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(socket)) throw new Error(`flowgrabd did not start: ${daemonLog}`);
    const load0 = loadavg()
      .map((x) => fmt(x, 2))
      .join(' ');
    const runs = benchRuns();
    const results: (RunResult & { gc: GcPause[] })[] = [];
    let base = 10;
    const modes = (process.env.FG_BENCH_DAEMON_MODES ?? 'raw,flowgrab').split(',') as Mode[];
    for (const mode of modes)
      for (const clients of [1, 16])
        for (let i = 0; i < runs; i++) {
          gcPauses = [];
          const r = await run(ns, socket, daemon.pid!, mode, clients, base++, trace);
          results.push({ ...r, gc: gcPauses });
        }
    console.log(
      `flowgrabd: conntrack NEW records at ${RATE}/s for ${SECONDS} s to 1 and to 16 clients (in ${CLIENT_PROCESSES} processes; ${cpus().length} CPUs); ${runs} runs each, medians; CPU from /proc`,
    );
    console.log(
      `  daemon node options: ${nodeArgs.join(' ') || "(Node's defaults)"}; options: ${daemonArgs.join(' ') || '(defaults)'}; load average at start ${load0}, at end ${loadavg()
        .map((x) => fmt(x, 2))
        .join(' ')}`,
    );
    console.log("  raw: clients that read frames and scan records with a regex (the daemon's own delivery);");
    console.log(
      '  flowgrab: connect() clients that parse every record (what an application sees; compact record frames);',
    );
    console.log(
      '  flowgrab-json: the same taking JSON record frames (FG_BENCH_DAEMON_MODES=raw,flowgrab-json,flowgrab)',
    );
    const med = (rs: RunResult[], k: keyof RunResult) => median(rs.map((r) => Number(r[k])));
    for (const mode of modes)
      for (const clients of [1, 16]) {
        const rs = results.filter((r) => r.mode === mode && r.clients === clients);
        const gc = rs.flatMap((r) => r.gc);
        const frames = rs.reduce((a, r) => a + (r.frames ?? 0), 0);
        const delivered = rs.reduce((a, r) => a + r.delivered, 0);
        console.log(
          `  ${mode.padEnd(13)} ${String(clients).padStart(2)} client(s): daemon CPU ${fmt(med(rs, 'cpuMs'), 0)} ms` +
            ` (${fmt((med(rs, 'cpuMs') * 1000) / rs[0].events, 1)} µs/event), clients' CPU ${fmt(med(rs, 'clientCpuMs'), 0)} ms;` +
            ` delivered ${delivered}/${rs[0].events * clients * rs.length}, lost ${rs.reduce((a, r) => a + r.lost, 0)};` +
            (frames ? ` ${fmt(delivered / frames, 1)} records/frame;` : '') +
            ` latency p50 ${fmt(med(rs, 'p50'), 2)} ms p99 ${fmt(med(rs, 'p99'), 2)} ms (runs: ${rs.map((r) => fmt(r.p99, 1)).join(' ')}) max ${fmt(Math.max(...rs.map((r) => r.max)), 1)} ms` +
            ` (daemon→client p50 ${fmt(med(rs, 'daemonToClientP50'), 0)} ms p99 ${fmt(med(rs, 'daemonToClientP99'), 0)} ms);` +
            ` daemon GC pauses: ${gcSummary(
              gc.filter((p) => p.scavenge),
              'scavenges',
            )}; ${gcSummary(
              gc.filter((p) => !p.scavenge),
              'full',
            )}`,
        );
        const stage = (name: Stage, q: 'p50' | 'p99') => median(rs.map((r) => r.stages?.[name][q] ?? Number.NaN));
        const loop = (q: 'p99' | 'max') => median(rs.map((r) => r.loopDelay?.[q] ?? Number.NaN));
        console.log(
          `${' '.repeat(23)}where it goes, p50/p99 ms: ${STAGES.map((n) => `${n} ${fmt(stage(n, 'p50'), 2)}/${fmt(stage(n, 'p99'), 2)}`).join(', ')};` +
            ` daemon event-loop delay p99 ${fmt(loop('p99'), 1)} ms, max ${fmt(loop('max'), 1)} ms`,
        );
      }
    for (const mode of modes) {
      const one = results.filter((r) => r.mode === mode && r.clients === 1);
      const sixteen = results.filter((r) => r.mode === mode && r.clients === 16);
      const cpu = med(sixteen, 'cpuMs') / med(one, 'cpuMs');
      const p99 = med(sixteen, 'p99');
      console.log(
        `  ${mode.padEnd(13)} daemon CPU 16 clients ÷ 1 client ${fmt(cpu, 2)}× (goal ≤ 2×: ${verdict(cpu <= 2)});` +
          ` latency p50/p99 with 1 client ${fmt(med(one, 'p50'), 2)}/${fmt(med(one, 'p99'), 2)} ms, with 16 ${fmt(med(sixteen, 'p50'), 2)}/${fmt(p99, 2)} ms;` +
          ` p99 with 16 clients ${fmt(p99, 2)} ms (goal ≤ 5 ms at ${RATE} events/s: ${verdict(p99 <= 5)})`,
      );
    }
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => (daemon.exitCode !== null ? r(0) : daemon.once('exit', r)));
    ns.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
