/**
 * `npm run demo`: a simulated home network in namespaces (router with
 * dnsmasq and NAT, three LAN clients, a WAN server), traffic between them,
 * and the SPIN-compatible monitor watching the router: it prints the web
 * view's address (served from this namespace, so a browser on this host
 * reaches it) and a line per device now and then. Everything is removed at
 * the end, or on Ctrl-C.
 *
 *   npm run demo -- [--seconds N] [--http PORT]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHomeNetwork, generateTraffic, type HomeNetwork } from 'flowgrab/testing';
import { type SpinApp, startSpin } from './spin/app.js';
import { writeCredentials } from './spin/io/auth.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a number`);
  return v;
}

interface DemoLogin {
  file: string;
  user: string;
  password: string;
}

/** The demo's own login (random each run), printed with the address. */
function demoLogin(dir: string): DemoLogin {
  const login = { file: join(dir, 'credentials'), user: 'spin', password: randomBytes(9).toString('base64url') };
  writeCredentials(login.file, login.user, login.password);
  return login;
}

async function startApp(home: HomeNetwork, dir: string, port: number, credentials: DemoLogin): Promise<SpinApp> {
  const names = join(dir, 'names.conf');
  writeFileSync(names, home.clients.map((c) => `name: ${c.mac} ${c.name}\n`).join(''));
  const base = {
    netns: home.router.name,
    stateDir: join(dir, 'state'),
    namesFile: names,
    leaseFile: home.leaseFile,
    httpHost: '127.0.0.1',
    tableName: 'spin_demo',
    credentialsFile: credentials.file,
    log: (l: string) => process.stderr.write(`spin: ${l}\n`),
  };
  try {
    return await startSpin({ ...base, httpPort: port, mqtt: { broker: 'embedded', tcpPort: 1883, wsPort: 1884 } });
  } catch (err) {
    // Ports taken (another SPIN, a broker): any free ones will do for a demo.
    if (!/EADDRINUSE/.test(String((err as Error).message) + String((err as { code?: string }).code))) throw err;
    return startSpin({ ...base, httpPort: 0, mqtt: { broker: 'embedded', tcpPort: 0, wsPort: 0 } });
  }
}

async function rpc(app: SpinApp, method: string, params?: object): Promise<unknown> {
  const reply = (await app.core.handleRpc({ jsonrpc: '2.0', id: 1, method, params })) as { result?: unknown };
  return reply.result;
}

async function summary(app: SpinApp): Promise<string> {
  const devices = (await rpc(app, 'list_devices')) as { id: number; name?: string; mac: string; ips: string[] }[];
  const lines: string[] = [];
  for (const d of devices) {
    const flows = (await rpc(app, 'list_device_flows', { device: d.mac })) as { bytes?: number }[];
    const bytes = flows.reduce((s, f) => s + (f.bytes ?? 0), 0);
    lines.push(
      `  node ${String(d.id).padEnd(3)} ${(d.name ?? d.mac).padEnd(18)} ${d.ips[0]?.padEnd(15) ?? ''} ${flows.length} flows, ${bytes} bytes`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('the demo builds network namespaces: run it as root (sudo npm run demo)');
  const seconds = arg('--seconds', 60);
  const port = arg('--http', 13026);
  process.stdout.write('flowgrab demo: building a home network in network namespaces…\n');
  const home = await createHomeNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'flowgrab-demo-'));
  mkdirSync(join(dir, 'state'));
  let app: SpinApp | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await app?.close().catch(() => {});
      await home.close();
      rmSync(dir, { recursive: true, force: true });
    })());
  const onSignal = () => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const login = demoLogin(dir);
    app = await startApp(home, dir, port, login);
    process.stdout.write(
      `router ${home.router.name}, clients ${home.clients.map((c) => `${c.name} ${c.ipv4}`).join(', ')}, server ${home.server.ipv4}\n\n` +
        `SPIN web view:  ${app.httpUrl}/spin_graph/graph.html  (user ${login.user}, password ${login.password})\n` +
        `JSON-RPC:       curl -s -u ${login.user}:${login.password} -H 'Content-Type: application/json' ${app.httpUrl}/spin_api/jsonrpc -d '{"jsonrpc":"2.0","id":1,"method":"list_devices"}'\n` +
        `${app.mqtt ? `MQTT:           mosquitto_sub -L '${app.mqtt.url}/SPIN/traffic/#'\n` : ''}` +
        `\nGenerating traffic for ${seconds} s (Ctrl-C stops and removes everything)…\n`,
    );
    const until = Date.now() + seconds * 1000;
    let rounds = 0;
    let nextReport = Date.now() + 5000;
    while (Date.now() < until && !stopping) {
      await generateTraffic(home, { rounds: 1 });
      rounds++;
      if (Date.now() >= nextReport) {
        nextReport = Date.now() + 10_000;
        process.stdout.write(`after ${rounds} rounds:\n${await summary(app)}\n`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    process.stdout.write(`\n${rounds} rounds of traffic. Devices seen:\n${await summary(app)}\n`);
  } finally {
    await stop();
  }
  process.stdout.write('Namespaces, firewall table and state removed.\n');
}

main().catch((err) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
