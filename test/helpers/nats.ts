/**
 * Real NATS servers for the tests (Debian's nats-server, installed by
 * scripts/bootstrap.sh): a JetStream cluster on free loopback ports with its
 * data in a temporary directory; nodes can be killed and started again on
 * the same ports and data. Also: reading a whole stream back, and the
 * `flowgrab export --nats` CLI as a child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { waitFor } from '../../src/testing/lab/index.js';

import { freeTcpPort } from './ports.js';

export { freeTcpPort };

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

interface Node {
  name: string;
  port: number;
  cport: number;
  mport: number;
  conf: string;
  proc?: ChildProcess;
  log: string;
}

/** A node of the cluster exited while it was starting. */
class NodeExited extends Error {}

export class NatsCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'fg-nats-'));
  private constructor(readonly nodes: Node[]) {}

  /**
   * `n` nodes (1: a single JetStream server, no cluster block), every one running and healthy before it resolves.
   * A node that exits while starting (its port taken meanwhile) makes a new cluster on new ports, twice at most.
   */
  static async start(n: number): Promise<NatsCluster> {
    for (let attempt = 1; ; attempt++) {
      const c = await NatsCluster.make(n);
      try {
        for (let i = 0; i < n; i++) c.startNode(i);
        await c.waitHealthy(30_000, true);
        return c;
      } catch (err) {
        c.close();
        if (attempt >= 3 || !(err instanceof NodeExited)) throw err;
      }
    }
  }

  private static async make(n: number): Promise<NatsCluster> {
    const nodes: Node[] = [];
    for (let i = 0; i < n; i++)
      nodes.push({
        name: `n${i + 1}`,
        port: await freeTcpPort(),
        cport: await freeTcpPort(),
        mport: await freeTcpPort(),
        conf: '',
        log: '',
      });
    const c = new NatsCluster(nodes);
    for (const node of nodes) {
      const routes = nodes.filter((x) => x !== node).map((x) => `"nats-route://127.0.0.1:${x.cport}"`);
      node.conf = join(c.dir, `${node.name}.conf`);
      const cluster =
        n > 1 ? `cluster { name: fgtest, listen: "127.0.0.1:${node.cport}", routes: [${routes.join(', ')}] }` : '';
      writeFileSync(
        node.conf,
        `server_name: ${node.name}\nlisten: "127.0.0.1:${node.port}"\nhttp: "127.0.0.1:${node.mport}"\n` +
          `jetstream { store_dir: "${join(c.dir, node.name)}", max_memory_store: 64MB, max_file_store: 1GB }\n${cluster}\n`,
      );
    }
    return c;
  }

  get urls(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  startNode(i: number): void {
    const node = this.nodes[i];
    if (node.proc && node.proc.exitCode === null && node.proc.signalCode === null) return;
    const p = spawn('nats-server', ['-c', node.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout?.on('data', (d) => (node.log += d));
    p.stderr?.on('data', (d) => (node.log += d));
    node.proc = p;
  }

  /** SIGKILL, and waits for the process to be gone. */
  async killNode(i: number): Promise<void> {
    const p = this.nodes[i].proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.killNode(i)));
  }

  /**
   * Every running node answers /healthz with JetStream ready. `all`: every node must be running too; one that
   * exited fails at once (NodeExited, with its log) instead of leaving a cluster short of a peer (a 3-replica
   * stream then never finds its placement).
   */
  async waitHealthy(timeoutMs = 30_000, all = false): Promise<void> {
    const up = (n: Node) => n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null;
    const gone = () => (all ? this.nodes.find((n) => !up(n)) : undefined);
    await waitFor(
      async () =>
        gone() !== undefined || (await Promise.all(this.nodes.filter(up).map((n) => healthy(n.mport)))).every(Boolean),
      {
        timeoutMs,
        intervalMs: 200,
        what: `nats-server health\n${this.nodes.map((n) => n.log.slice(-2000)).join('\n')}`,
      },
    );
    const exited = gone();
    if (exited) throw new NodeExited(`nats-server ${exited.name} exited while starting:\n${exited.log.slice(-2000)}`);
  }

  async client(): Promise<NatsConnection> {
    return connect({ servers: this.urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  }

  close(): void {
    for (const n of this.nodes) if (n.proc && n.proc.exitCode === null) n.proc.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** How many messages the stream holds (0 when it does not exist yet). */
export async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await jetstreamManager(nc, { timeout: 3000 });
  try {
    return (await jsm.streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

export interface Stored {
  seq: number;
  subject: string;
  msgId?: string;
  data: Record<string, unknown>;
}

/** Every message of the stream, in order (an ordered consumer, bounded in time). */
export async function readStream(nc: NatsConnection, stream: string, timeoutMs = 30_000): Promise<Stored[]> {
  const total = await streamCount(nc, stream);
  const out: Stored[] = [];
  if (total === 0) return out;
  const js = jetstream(nc);
  // Right after a node was killed the cluster may still be electing leaders and a JetStream API request can
  // time out: ask again, within the same bound.
  let c: Awaited<ReturnType<typeof js.consumers.get>> | undefined;
  await waitFor(
    async () => {
      c = await js.consumers.get(stream).catch(() => undefined);
      return c !== undefined;
    },
    { timeoutMs, intervalMs: 500, what: `an ordered consumer on ${stream}` },
  );
  if (!c) throw new Error(`no consumer on ${stream}`);
  const it = await c.consume({ max_messages: 1000 });
  const t = setTimeout(() => void it.close(), timeoutMs);
  for await (const m of it) {
    out.push({
      seq: m.seq,
      subject: m.subject,
      msgId: m.headers?.get('Nats-Msg-Id'),
      data: m.json<Record<string, unknown>>(),
    });
    if (m.info.pending === 0 && out.length >= total) break;
  }
  clearTimeout(t);
  await it.close();
  return out;
}

/** A flowgrab CLI process with its stderr kept. */
export class CliProcess {
  readonly proc: ChildProcess;
  err = '';
  out = '';

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stderr?.on('data', (d) => (this.err += d));
    this.proc.stdout?.on('data', (d) => (this.out += d));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends `signal` and resolves with the exit code (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<number | null> {
    if (!this.running) return this.proc.exitCode;
    const done = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await done;
    clearTimeout(t);
    return code;
  }
}
