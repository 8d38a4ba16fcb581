/**
 * Collectors and decoders for the export tests: nfcapd (Debian's nfdump
 * 1.7) on a free loopback port, `nfdump -o json` to read what it stored,
 * tshark capturing the exporter's datagrams and decoding them as cflow, and
 * `conntrack -E -e DESTROY` as the independent record of what ended.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, waitFor } from '../../src/testing/lab/index.js';
import { type KernelCtEntry, parseConntrackList } from '../helpers/conntrack-cli.js';

export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function collectOutput(p: ChildProcess): { text: () => string } {
  let out = '';
  p.stdout?.on('data', (d) => (out += d));
  p.stderr?.on('data', (d) => (out += d));
  return { text: () => out };
}

async function stop(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

export interface NfdumpFlow {
  proto: number;
  src4_addr?: string;
  dst4_addr?: string;
  src6_addr?: string;
  dst6_addr?: string;
  src_port?: number;
  dst_port?: number;
  icmp_type?: number;
  icmp_code?: number;
  in_packets: number;
  in_bytes: number;
  out_packets?: number;
  out_bytes?: number;
  first: string;
  last: string;
  tcp_flags?: string;
  src4_xlt_ip?: string;
  dst4_xlt_ip?: string;
  src_xlt_port?: string;
  dst_xlt_port?: string;
}

export class Nfcapd {
  readonly dir = mkdtempSync(join(tmpdir(), 'fg-nfcapd-'));
  private proc?: ChildProcess;
  private out?: { text: () => string };
  constructor(readonly port: number) {}

  static async start(port?: number): Promise<Nfcapd> {
    const n = new Nfcapd(port ?? (await freeUdpPort()));
    await n.begin();
    return n;
  }

  async begin(): Promise<void> {
    this.proc = spawn('nfcapd', ['-w', this.dir, '-p', String(this.port), '-b', '127.0.0.1', '-t', '3600'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.out = collectOutput(this.proc);
    await waitFor(() => /Startup/.test(this.out?.text() ?? ''), { timeoutMs: 5000, what: 'nfcapd to start' });
  }

  /** SIGTERM (nfcapd writes its file), then every flow stored so far, and nfcapd's own summary line. */
  async stop(): Promise<{ flows: NfdumpFlow[]; log: string }> {
    // nfcapd does not drain its socket on SIGTERM: let it read what was just sent.
    if (this.proc && this.proc.exitCode === null) await new Promise((r) => setTimeout(r, 400));
    if (this.proc) await stop(this.proc);
    const log = this.out?.text() ?? '';
    const flows: NfdumpFlow[] = [];
    for (const f of readdirSync(this.dir).filter((x) => /^nfcapd\.\d+$/.test(x))) {
      const { stdout } = await run(['nfdump', '-r', join(this.dir, f), '-o', 'json'], { timeoutMs: 20_000 });
      // With no flows, nfdump 1.7 prints a bracketed "No matching flows" instead of an empty array.
      if (stdout.includes('{')) flows.push(...(JSON.parse(stdout) as NfdumpFlow[]));
    }
    return { flows, log };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** tshark on `lo`, keeping the datagrams to and from `port` in a pcap; `decode()` reads them back as cflow. */
export class Capture {
  readonly file: string;
  private proc?: ChildProcess;
  private out?: { text: () => string };
  constructor(
    readonly dir: string,
    readonly port: number,
    readonly proto: 'udp' | 'tcp' = 'udp',
  ) {
    this.file = join(dir, `cap-${port}.pcap`);
  }

  async start(): Promise<void> {
    this.proc = spawn('tshark', ['-i', 'lo', '-f', `${this.proto} port ${this.port}`, '-w', this.file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.out = collectOutput(this.proc);
    await waitFor(() => /Capturing on/.test(this.out?.text() ?? ''), { timeoutMs: 15_000, what: 'tshark to start' });
  }

  async stop(): Promise<void> {
    // Give the last datagrams time to reach the capture before it ends.
    await new Promise((r) => setTimeout(r, 300));
    if (this.proc) await stop(this.proc, 'SIGINT');
  }

  /** The verbose decode of every packet, as tshark prints it. */
  async decode(): Promise<string> {
    const { stdout } = await run(['tshark', '-r', this.file, '-d', `${this.proto}.port==${this.port},cflow`, '-V'], {
      timeoutMs: 60_000,
      allowFail: true,
    });
    return stdout;
  }
}

/** `conntrack -E -e DESTROY -o extended` in `netns`: the kernel's own record of every flow that ended. */
export class DestroyLog {
  private proc?: ChildProcess;
  private out?: { text: () => string };
  constructor(readonly netns: string) {}

  async start(): Promise<void> {
    this.proc = spawn('ip', ['netns', 'exec', this.netns, 'conntrack', '-E', '-e', 'DESTROY', '-o', 'extended'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.out = collectOutput(this.proc);
    // conntrack -E says nothing when it starts; give it a moment to bind.
    await new Promise((r) => setTimeout(r, 300));
  }

  async stop(): Promise<KernelCtEntry[]> {
    await new Promise((r) => setTimeout(r, 300));
    if (this.proc) await stop(this.proc);
    const lines = (this.out?.text() ?? '')
      .split('\n')
      .filter((l) => l.includes('[DESTROY]'))
      // Event lines carry no timeout column: add one so the `conntrack -L` parser reads them.
      .map((l) => l.replace(/^\s*\[DESTROY\]\s*/, '').replace(/^(ipv[46]\s+\d+\s+\S+\s+\d+)\s+(?=\S+=)/, '$1 0 '));
    return parseConntrackList(lines.join('\n'), { requireId: false });
  }
}

/** Waits until `f` returns the same value twice in a row, `intervalMs` apart; throws when it never does within `timeoutMs`. */
export async function settled<T>(f: () => T, intervalMs = 300, timeoutMs = 10_000): Promise<T> {
  let prev = JSON.stringify(f());
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const cur = JSON.stringify(f());
    if (cur === prev) return f();
    if (Date.now() > deadline)
      throw new Error(`settled: still changing after ${timeoutMs} ms (last ${cur.slice(0, 200)})`);
    prev = cur;
  }
}
