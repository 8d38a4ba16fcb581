/**
 * Collectors and decoders for the export tests: nfcapd (Debian's nfdump
 * 1.7) on a free loopback port, `nfdump -o json` to read what it stored,
 * tshark capturing the exporter's datagrams and decoding them as cflow, and
 * `conntrack -E -e DESTROY` as the independent record of what ended.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NFNLGRP_CONNTRACK_DESTROY } from '../../src/netlink/conntrack/enums.js';
import { run, waitFor } from '../../src/testing/lab/index.js';
import { conntrackTool, type KernelCtEntry, parseConntrackList } from '../helpers/conntrack-cli.js';
import { netfilterGroupsOf } from '../helpers/netlink-proc.js';

import { freeUdpPort } from '../helpers/ports.js';

export { freeUdpPort };

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

/** Datagrams waiting in the receive queue of the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp), if any. */
function udpReceiveQueue(port: number): number | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    // Columns: sl local_address rem_address st tx_queue:rx_queue …
    const f = line.trim().split(/\s+/);
    if (f[1] === local) return Number.parseInt(f[4].split(':')[1], 16);
  }
  return undefined;
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
    // nfcapd does not drain its socket on SIGTERM: wait until it has read everything sent to it.
    if (this.proc && this.proc.exitCode === null) {
      await waitFor(() => udpReceiveQueue(this.port) === 0, {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: `nfcapd to read every datagram queued on port ${this.port}`,
      });
    }
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

  private frames = 0;

  async start(): Promise<void> {
    // -P -l: besides writing the file, print each frame's number as it is captured (to count them).
    const filter = `${this.proto} port ${this.port}`;
    this.proc = spawn(
      'tshark',
      ['-i', 'lo', '-f', filter, '-w', this.file, '-P', '-l', '-T', 'fields', '-e', 'frame.number'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let line = '';
    this.proc.stdout?.on('data', (d) => {
      line += d;
      const lines = line.split('\n');
      line = lines.pop() ?? '';
      this.frames += lines.filter((l) => l.trim() !== '').length;
    });
    const err = { text: '' };
    this.proc.stderr?.on('data', (d) => (err.text += d));
    this.out = { text: () => err.text };
    await waitFor(() => /Capturing on/.test(this.out?.text() ?? ''), { timeoutMs: 15_000, what: 'tshark to start' });
  }

  /** Stops once the capture holds at least `packets` frames (the datagrams the test knows were sent). */
  async stop(packets = 0): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      await waitFor(() => this.frames >= packets, {
        timeoutMs: 15_000,
        intervalMs: 20,
        what: `tshark to capture ${packets} frames (${this.frames} so far)`,
      });
    }
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

/** The entry DestroyLog.stop() inserts and deletes: its DESTROY comes after every earlier one (TEST-NET-1, no traffic). */
const MARKER = ['-p', 'udp', '-s', '192.0.2.1', '-d', '192.0.2.2', '--sport', '1', '--dport', '9'];
const isMarker = (l: string) => /src=192\.0\.2\.1 dst=192\.0\.2\.2 sport=1 dport=9/.test(l);

/** `conntrack -E -e DESTROY -o extended` in `netns`: the kernel's own record of every flow that ended. */
export class DestroyLog {
  private proc?: ChildProcess;
  private out?: { text: () => string };
  constructor(readonly netns: string) {}

  async start(): Promise<void> {
    const p = spawn('ip', ['netns', 'exec', this.netns, 'conntrack', '-E', '-e', 'DESTROY', '-o', 'extended'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = p;
    this.out = collectOutput(p);
    // conntrack -E says nothing when it starts: wait until its socket has joined the DESTROY group (`ip netns
    // exec` execs conntrack, so the pid is conntrack's).
    const destroyGroup = 1 << (NFNLGRP_CONNTRACK_DESTROY - 1);
    await waitFor(() => p.pid !== undefined && (netfilterGroupsOf(p.pid) & destroyGroup) !== 0, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: `conntrack -E in ${this.netns} to join the DESTROY group\n${this.out.text()}`,
    });
  }

  /**
   * Every DESTROY so far. A marker entry is inserted and deleted first: once its DESTROY is printed, so is
   * every DESTROY before it (the marker is left out of the result).
   */
  async stop(): Promise<KernelCtEntry[]> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      await conntrackTool(this.netns, ['-I', ...MARKER, '--timeout', '60']);
      await conntrackTool(this.netns, ['-D', ...MARKER]);
      await waitFor(() => (this.out?.text() ?? '').split('\n').some((l) => l.includes('[DESTROY]') && isMarker(l)), {
        timeoutMs: 15_000,
        intervalMs: 10,
        what: `conntrack -E in ${this.netns} to print the marker entry's DESTROY`,
      });
      await stop(this.proc);
    }
    const lines = (this.out?.text() ?? '')
      .split('\n')
      .filter((l) => l.includes('[DESTROY]') && !isMarker(l))
      // Event lines carry no timeout column: add one so the `conntrack -L` parser reads them.
      .map((l) => l.replace(/^\s*\[DESTROY\]\s*/, '').replace(/^(ipv[46]\s+\d+\s+\S+\s+\d+)\s+(?=\S+=)/, '$1 0 '));
    return parseConntrackList(lines.join('\n'), { requireId: false });
  }
}
