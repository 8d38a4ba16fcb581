/**
 * Export benchmarks (issue 9), each against a baseline measured in the same run:
 *  1. encode rate of IPFIX and NetFlow v9 (goal ≥ 500 000 records/s) vs JSON.stringify of the same records;
 *  2. end to end: conntrack events of a UDP flood → exporter → nfcapd, records lost (goal 0) and rate;
 *  3. CPU per exported flow vs softflowd (Debian) exporting the same flood as NetFlow v9.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netflow9Sink } from '../src/export/collector.js';
import { exportConntrack } from '../src/export/exporter.js';
import type { ExportFlow } from '../src/export/flow.js';
import { IpfixEncoder } from '../src/export/ipfix.js';
import { Netflow9Encoder } from '../src/export/netflow9.js';
import { BenchNetns, fmt, median, sh } from './lib.js';

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
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint();
    const n = run();
    xs.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return median(xs);
}

function encodeBench(): void {
  const recs = records(Math.min(N, 200_000));
  const rounds = Math.max(1, Math.round(N / recs.length));
  let bytes = 0;
  const sinkBytes = (m: Buffer) => {
    bytes += m.length;
  };
  const ipfix = new IpfixEncoder({}, sinkBytes);
  const nf9 = new Netflow9Encoder({ bootMs: Date.now() - 1e7 }, sinkBytes);
  const enc = (e: IpfixEncoder | Netflow9Encoder) => () => {
    for (let r = 0; r < rounds; r++) for (const f of recs) e.add(f);
    e.flush();
    return rounds * recs.length;
  };
  const json = rate(() => {
    for (let r = 0; r < rounds; r++) for (const f of recs) bytes += JSON.stringify(f).length;
    return rounds * recs.length;
  });
  const a = rate(enc(ipfix));
  const b = rate(enc(nf9));
  console.log(`export encode, ${rounds * recs.length} flows per run, median of 5`);
  console.log(`  JSON.stringify (baseline)    ${fmt(json / 1e3, 0)} k records/s`);
  console.log(
    `  IPFIX biflow                 ${fmt(a / 1e3, 0)} k records/s   ratio ${fmt(a / json, 2)}× (goal ≥ 500 k/s)`,
  );
  console.log(
    `  NetFlow v9 (2 per flow)      ${fmt(b / 1e3, 0)} k flows/s     ratio ${fmt(b / json, 2)}× (goal ≥ 500 k/s)`,
  );
}

function nfcapd(dir: string, port: number, netns?: string): ChildProcess {
  const argv = ['nfcapd', '-w', dir, '-p', String(port), '-b', '127.0.0.1', '-t', '3600', '-B', String(8 << 20)];
  return spawn(netns ? 'ip' : argv[0], netns ? ['netns', 'exec', netns, ...argv] : argv.slice(1), { stdio: 'ignore' });
}

async function stop(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  await done;
}

function nfdumpFlows(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir).filter((x) => /^nfcapd\.\d+$/.test(x))) {
    const out = sh(['nfdump', '-r', join(dir, f), '-q', '-o', 'csv']);
    n += out.split('\n').filter((l) => /^\d{4}-/.test(l)).length;
  }
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds a process used, from /proc (clock ticks of 1/100 s). */
function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(x[11]) + Number(x[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function endToEnd(): Promise<void> {
  const ns = new BenchNetns();
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-export-'));
  const dir2 = mkdtempSync(join(tmpdir(), 'fg-bench-softflowd-'));
  const port = 30_000 + (process.pid % 20_000);
  const col = nfcapd(dir, port);
  const col2 = nfcapd(dir2, port + 1, ns.name);
  let soft: ChildProcess | undefined;
  try {
    ns.exec(['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=1']);
    await sleep(500);
    const sink = netflow9Sink({ collector: `127.0.0.1:${port}` });
    const ex = exportConntrack(sink, { netns: ns.name, activeTimeoutS: 0 });
    // softflowd watches the same traffic on lo, exports NetFlow v9 to its own nfcapd in the namespace.
    soft = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns.name,
        'softflowd',
        '-i',
        'lo',
        '-n',
        `127.0.0.1:${port + 1}`,
        '-v',
        '9',
        '-d',
        '-t',
        'udp=1',
        '-t',
        'expint=1',
        'udp and dst port 9',
      ],
      { stdio: 'ignore' },
    );
    await sleep(1000);
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const secs = await ns.generate(FLOWS, 0, 3);
    // Flows end after the 1 s UDP timeout; wait until every DESTROY has been exported.
    const deadline = Date.now() + 60_000;
    while (ex.stats().tracker.ended < FLOWS && Date.now() < deadline) await sleep(200);
    const elapsed = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await ex.close();
    await sleep(2000);
    const softPid = soft.pid ?? 0;
    // softflowd's own process is the child of `ip netns exec` (it execs): same pid.
    const softCpu = cpuOf(softPid);
    await stop(soft);
    await sleep(500);
    await stop(col);
    await stop(col2);
    const stored = nfdumpFlows(dir);
    const storedSoft = nfdumpFlows(dir2);
    const ours = (cpu.user + cpu.system) / 1e6;
    const st = ex.stats();
    console.log(`export end to end: ${FLOWS} UDP flows (one datagram each, no reply) in ${fmt(secs, 2)} s`);
    console.log(
      `  conntrack DESTROY → NetFlow v9 → nfcapd: ${st.tracker.ended} flows ended (${FLOWS} flooded), ${st.sink.sent} records sent, ${stored} stored, lost ${st.sink.sent + st.sink.dropped - stored} (goal 0); ${fmt(stored / elapsed, 0)} flows/s over ${fmt(elapsed, 1)} s (bound by the 1 s UDP timeout)`,
    );
    console.log(`  sink: sent ${st.sink.sent}, dropped ${st.sink.dropped}, messages ${st.sink.messages}`);
    console.log(
      `  CPU per exported flow: flowgrab ${fmt((ours / Math.max(stored, 1)) * 1e6, 1)} µs (whole process: events, decode, tracking, encoding)`,
    );
    console.log(
      `                         softflowd ${fmt((softCpu / Math.max(storedSoft, 1)) * 1e6, 1)} µs (${storedSoft} flows stored; pcap capture of the same traffic)   ratio ${fmt(ours / Math.max(stored, 1) / (softCpu / Math.max(storedSoft, 1)), 2)}×`,
    );
  } finally {
    if (soft) await stop(soft, 'SIGKILL');
    await stop(col, 'SIGKILL');
    await stop(col2, 'SIGKILL');
    ns.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  }
}

export async function benchExport(): Promise<void> {
  encodeBench();
  await endToEnd();
}
