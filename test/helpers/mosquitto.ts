/**
 * Debian's mosquitto for tests: a broker on a free loopback port with a
 * config file in a temp dir (started and stopped by the test), and
 * mosquitto_sub / mosquitto_pub as real third-party clients.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, waitFor } from '../../src/testing/lab/index.js';

export { freeTcpPort as freePort } from './ports.js';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class Mosquitto {
  readonly dir = mkdtempSync(join(tmpdir(), 'fg-mosquitto-'));
  private child?: ChildProcess;
  log = '';

  constructor(readonly port: number) {
    writeFileSync(
      join(this.dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
    );
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    try {
      await waitFor(() => accepts(this.port), { timeoutMs: 5000 });
    } catch (error) {
      await this.stop();
      throw new Error(`mosquitto did not start:\n${this.log}`, { cause: error });
    }
  }

  /** SIGTERM to the broker this object started, and wait for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SubMessage {
  retain: boolean;
  topic: string;
  payload: string;
}

/** A running `mosquitto_sub -t <topic>`; messages parsed from its `-F` output. */
export class MosquittoSub {
  readonly messages: SubMessage[] = [];
  private child: ChildProcess;
  private buffered = '';
  private subscribed = false;

  constructor(port: number, topic: string) {
    // -d prints "Subscribed (mid…" once the SUBACK arrived; message lines are marked MSG.
    // stdbuf: mosquitto_sub flushes after messages but not after its debug lines.
    this.child = spawn(
      'stdbuf',
      ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-d', '-F', 'MSG %r %t %p', '-t', topic],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    this.child.stdout?.on('data', (d: Buffer) => this.take(d.toString()));
  }

  private take(text: string): void {
    this.buffered += text;
    const lines = this.buffered.split('\n');
    this.buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('Subscribed (mid')) this.subscribed = true;
      const m = /^MSG ([01]) (\S+) ?(.*)$/.exec(line);
      if (m) this.messages.push({ retain: m[1] === '1', topic: m[2], payload: m[3] });
    }
  }

  /** Resolves once subscribed; on failure the process is stopped before the error is thrown. */
  async ready(): Promise<this> {
    try {
      await waitFor(() => this.subscribed, { timeoutMs: 5000 });
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this;
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    return exited;
  }
}

export async function mosquittoPub(port: number, topic: string, message: string): Promise<void> {
  await run(['mosquitto_pub', '-h', '127.0.0.1', '-p', String(port), '-t', topic, '-m', message], { timeoutMs: 5000 });
}
