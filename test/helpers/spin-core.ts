/**
 * Helpers for the SPIN core's integration tests: the app started on a home
 * network, JSON-RPC over the Unix socket and HTTP, connection probes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpinApp, type SpinOptions, startSpin } from '../../examples/spin/app.js';
import { writeCredentials } from '../../examples/spin/io/auth.js';
import { createHomeNetwork, type HomeNetwork, type LabClient } from '../../src/testing/index.js';

/** The login the SPIN integration tests give the app (its credentials file is written per test). */
export const TEST_LOGIN = { user: 'tester', password: 'lab-only-password' };
export const TEST_AUTHORIZATION = `Basic ${Buffer.from(`${TEST_LOGIN.user}:${TEST_LOGIN.password}`).toString('base64')}`;

/** Writes TEST_LOGIN's credentials file into `dir` (which must exist) and returns its path. */
export function testCredentials(dir: string): string {
  const file = join(dir, 'test-credentials');
  // Made again when the app restarts on the same directory (writeCredentials makes a new file only).
  rmSync(file, { force: true });
  writeCredentials(file, TEST_LOGIN.user, TEST_LOGIN.password);
  return file;
}

/**
 * What most SPIN tests run the app with: watching the router of `home`, HTTP
 * on any free port, no MQTT, the RPC socket and the state in `dir`, the test
 * login; `options` override these.
 */
export function spinOptions(home: HomeNetwork, dir: string, options: Partial<SpinOptions> = {}): SpinOptions {
  return {
    netns: home.router.name,
    httpPort: 0,
    mqtt: false,
    rpcSocket: join(dir, 'rpc.sock'),
    stateDir: join(dir, 'state'),
    credentialsFile: testCredentials(dir),
    ...options,
  };
}

/** A home network with the app watching its router (startSpinLab). */
export interface SpinLab {
  home: HomeNetwork;
  app: SpinApp;
  /** A directory of this lab's own (state, login, RPC socket), removed by close(). */
  dir: string;
  /** The app's JSON-RPC Unix socket. */
  sock: string;
  /** Stops the app, removes the namespaces and the directory. */
  close(): Promise<void>;
}

/**
 * Makes a home network and starts the app on it (spinOptions with `options`,
 * or with what `options` makes of the network); all of it goes if the start fails.
 */
export async function startSpinLab(
  name: string,
  options: Partial<SpinOptions> | ((home: HomeNetwork) => Partial<SpinOptions>) = {},
  /** Runs once the network is up, before the app starts (e.g. to leave what a killed instance would). */
  prepare?: (home: HomeNetwork) => Promise<void>,
): Promise<SpinLab> {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  let home: HomeNetwork | undefined;
  let app: SpinApp | undefined;
  const close = async () => {
    try {
      await app?.close();
      await home?.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    home = await createHomeNetwork();
    await prepare?.(home);
    const opts = spinOptions(home, dir, typeof options === 'function' ? options(home) : options);
    app = await startSpin(opts);
    return { home, app, dir, sock: opts.rpcSocket!, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface RpcReply {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string };
}

/** One request per connection, as spind frames it; resolves with the raw reply text ('' when none). */
export function socketRpcRaw(path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let out = '';
    // Generous: on a loaded 2-core machine (load 18) a block took 12 s and list_devices 3 s.
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no reply from ${path} within 30 s`));
    }, 30_000);
    s.on('connect', () => s.write(body));
    s.on('data', (d) => (out += d));
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

let nextId = 1;
export async function socketRpc(path: string, method: string, params?: unknown): Promise<RpcReply> {
  const req: Record<string, unknown> = { jsonrpc: '2.0', id: nextId++, method };
  if (params !== undefined) req.params = params;
  const text = await socketRpcRaw(path, JSON.stringify(req));
  return JSON.parse(text) as RpcReply;
}

/** POST to the app's RPC as an authenticated JSON client (TEST_LOGIN; ignored when auth is off). */
export async function httpRpcRaw(url: string, body: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${url}/spin_api/jsonrpc`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', authorization: TEST_AUTHORIZATION },
  });
  return { status: r.status, text: await r.text() };
}

export async function httpRpc(url: string, method: string, params?: unknown): Promise<RpcReply> {
  const req: Record<string, unknown> = { jsonrpc: '2.0', id: nextId++, method };
  if (params !== undefined) req.params = params;
  return JSON.parse((await httpRpcRaw(url, JSON.stringify(req))).text) as RpcReply;
}

/** True when the client gets its TCP echo back from the WAN server within about a second. */
export async function tcpWorks(home: HomeNetwork, c: LabClient, target = home.server.ipv4): Promise<boolean> {
  const payload = `probe ${c.name} ${Date.now()}`;
  const addr = target.includes(':') ? `TCP6:[${target}]` : `TCP4:${target}`;
  const r = await c.ns.exec(['socat', '-T', '1', '-', `${addr}:${home.server.tcpPort},connect-timeout=1`], {
    input: `${payload}\n`,
    allowFail: true,
    timeoutMs: 4000,
  });
  return r.stdout.trim() === payload;
}

export interface Device {
  id: number;
  name?: string;
  mac: string;
  lastseen: number;
  ips: string[];
  domains: string[];
  is_blocked?: true;
}

export interface DeviceFlow {
  to: number;
  dst_port: number;
  icmp_type: number;
  packets?: number;
  bytes?: number;
  lastseen?: number;
  blocked?: 1;
}
