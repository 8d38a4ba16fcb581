// The SPIN example refuses what a web page elsewhere, a DNS-rebound name or
// an anonymous MQTT client could do to the router, while its own page (in
// Chromium, logged in) and an authenticated RPC client keep working.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpinApp } from '../../examples/spin/app.js';
import { generateTraffic, type HomeNetwork, run, waitFor } from '../../src/testing/index.js';
import { type SpinLab, socketRpc, startSpinLab, TEST_AUTHORIZATION, TEST_LOGIN } from '../helpers/spin-core.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'];
const WIDE_BLOCK = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'add_iplist_ip',
  params: { list: 'block', ip: '192.0.2.0/24' },
});

let home: HomeNetwork;
let app: SpinApp;
let browser: Browser;
let evil: Server;
let evilUrl: string;
let sock: string;
let lab: SpinLab;

beforeAll(async () => {
  lab = await startSpinLab('spin-access', (h) => ({
    mqtt: { broker: 'embedded', tcpPort: 0, wsPort: 0 },
    leaseFile: h.leaseFile,
    tableName: `spin_acc${process.pid % 10000}`,
  }));
  ({ home, app, sock } = lab);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  // A web page of another origin, as any site a user on the LAN might open.
  evil = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>hello</h1>'));
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((r) => (evil ? evil.close(() => r()) : r()));
  await lab?.close();
});

const blockList = async () => (await socketRpc(sock, 'list_iplist', { list: 'block' })).result as string[];

/** A raw HTTP POST with exactly these headers (fetch would not send a foreign Host). */
function post(headers: Record<string, string>, body = WIDE_BLOCK): Promise<{ status: number; text: string }> {
  const url = new URL(`${app.httpUrl}/spin_api/jsonrpc`);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, setHost: false },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP JSON-RPC', () => {
  it('refuses cross-origin, rebound Host, text/plain and anonymous posts; an authenticated JSON client works', async () => {
    const host = new URL(app.httpUrl).host;
    const json = { 'content-type': 'application/json', authorization: TEST_AUTHORIZATION };
    const refused = [
      [{ host, 'content-type': 'text/plain', origin: 'http://evil.example' }, 403],
      [{ host: 'evil.example', 'content-type': 'text/plain' }, 421],
      [{ host: `evil.example:${new URL(app.httpUrl).port}`, ...json }, 421],
      [{ host, ...json, origin: 'http://evil.example' }, 403],
      [{ host, ...json, 'sec-fetch-site': 'cross-site' }, 403],
      [{ host, 'content-type': 'text/plain', authorization: TEST_AUTHORIZATION }, 415],
      [{ host, 'content-type': 'application/json' }, 401],
      [{ host, 'content-type': 'application/json', authorization: 'Basic dGVzdGVyOndyb25n' }, 401],
    ] as const;
    for (const [headers, status] of refused) {
      const r = await post(headers);
      expect(r.status, JSON.stringify(headers)).toBe(status);
    }
    expect(await blockList()).toEqual([]);
    const ok = await post({ host, ...json, origin: new URL(app.httpUrl).origin });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toEqual({ jsonrpc: '2.0', id: 1 });
    expect(await blockList()).toEqual(['192.0.2.0/24']);
    await socketRpc(sock, 'remove_iplist_ip', { list: 'block', ip: '192.0.2.0/24' });
  });

  it('the page logs in once (Basic, then a session cookie), draws the devices; a foreign page cannot post or open the WebSocket', async () => {
    await generateTraffic(home, { rounds: 1, ipv6: false });
    const context = await browser.newContext({
      httpCredentials: { username: TEST_LOGIN.user, password: TEST_LOGIN.password },
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${app.httpUrl}/spin_graph/graph.html`);
    await expect.poll(() => page.locator('#mqtt-status').getAttribute('data-state')).toBe('connected');
    await expect
      .poll(() => page.locator('li.device').evaluateAll((els) => els.map((e) => e.getAttribute('data-mac'))), {
        timeout: 10_000,
      })
      .toEqual(expect.arrayContaining(home.clients.map((c) => c.mac)));
    expect((await context.cookies()).map((c) => c.name)).toContain('spin_session');
    expect(problems).toEqual([]);

    // The same browser, logged in, on another site: its requests reach the app but are refused.
    const other = await context.newPage();
    await other.goto(evilUrl);
    const attempt = await other.evaluate(
      async ({ rpcUrl, wsUrl, body }) => {
        const results: string[] = [];
        for (const type of ['text/plain', 'application/json']) {
          try {
            const r = await fetch(rpcUrl, { method: 'POST', mode: 'no-cors', headers: { 'content-type': type }, body });
            results.push(`fetch ${type}: ${r.type}`);
          } catch (e) {
            results.push(`fetch ${type}: ${(e as Error).message}`);
          }
        }
        const ws = await new Promise<string>((resolve) => {
          const s = new WebSocket(wsUrl, 'mqtt');
          s.onopen = () => resolve('open');
          s.onerror = () => resolve('error');
        });
        results.push(`ws: ${ws}`);
        return results;
      },
      { rpcUrl: `${app.httpUrl}/spin_api/jsonrpc`, wsUrl: app.mqtt?.wsUrl as string, body: WIDE_BLOCK },
    );
    expect(attempt).toContain('ws: error');
    expect(await blockList()).toEqual([]);
    await context.close();
  });
});

describe('embedded MQTT broker', () => {
  const url = () => app.mqtt?.url as string;
  const port = () => new URL(url()).port;

  it('an anonymous client cannot publish RPC requests or under SPIN/traffic, retain, or subscribe to #', async () => {
    // mosquitto_pub (a real third-party client) with QoS 1: the broker drops the connection instead of acknowledging.
    for (const [topic, message, retain] of [
      ['SPIN/jsonrpc/q', WIDE_BLOCK, false],
      ['SPIN/traffic/node/999', '{"command":"nodeInfo","result":{"id":999,"ips":["192.0.2.9"]}}', true],
      ['SPIN/traffic', '{"command":"serverRestart"}', false],
    ] as const) {
      const args = ['mosquitto_pub', '-h', '127.0.0.1', '-p', port(), '-q', '1', '-t', topic, '-m', message];
      const r = await run(retain ? [...args, '-r'] : args, { allowFail: true, timeoutMs: 10_000 });
      expect(r.code, `${topic}: ${r.stderr}`).not.toBe(0);
    }
    expect(await blockList()).toEqual([]);

    const anon = await mqtt.connectAsync(url(), { reconnectPeriod: 0 });
    try {
      // mqtt.js turns a refused subscription (granted 0x80) into an error.
      await expect(anon.subscribeAsync('#')).rejects.toThrow(/Subscribe error/);
      await expect(anon.subscribeAsync('SPIN/jsonrpc/a')).rejects.toThrow(/Subscribe error/);
      expect((await anon.subscribeAsync('SPIN/traffic/#')).map((g) => g.qos)).toEqual([0]);
      const retained: string[] = [];
      anon.on('message', (t) => retained.push(t));
      await anon.subscribeAsync('SPIN/traffic/node/+');
      await waitFor(() => retained.length > 0, { timeoutMs: 5000 });
      expect(retained).not.toContain('SPIN/traffic/node/999');
      // What SPIN's page publishes stays possible.
      await anon.publishAsync('SPIN/commands', '{"command":"get_peak_info","argument":1}', { qos: 1 });
    } finally {
      await anon.endAsync(true);
    }
    await expect(
      mqtt.connectAsync(url(), { reconnectPeriod: 0, username: TEST_LOGIN.user, password: 'wrong' }),
    ).rejects.toThrow(/Bad username or password/i);
  });

  it('get_peak_info on SPIN/commands (anonymous, as SPIN’s page) gets the laptop’s traffic per minute', async () => {
    const [laptop] = home.clients;
    await generateTraffic(home, { rounds: 1, ipv6: false });
    const devices = (await socketRpc(sock, 'list_devices')).result as { id: number; mac: string }[];
    const id = devices.find((d) => d.mac === laptop.mac)?.id as number;
    expect(id).toBeTypeOf('number');
    const c = await mqtt.connectAsync(url(), { reconnectPeriod: 0 });
    try {
      const infos: { argument: string; result?: { items: Record<string, { bytes: number }>; maxbytes: number } }[] = [];
      c.on('message', (_t, p) => {
        const m = JSON.parse(p.toString());
        if (m.command === 'peakinfo') infos.push(m);
      });
      await c.subscribeAsync('SPIN/traffic');
      await waitFor(
        async () => {
          await c.publishAsync('SPIN/commands', JSON.stringify({ command: 'get_peak_info', argument: id }));
          return infos.some((i) => i.result !== undefined);
        },
        { timeoutMs: 10_000 },
      );
      const info = infos.find((i) => i.result)!;
      expect(info.argument).toBe(String(id));
      const bytes = Object.values(info.result!.items).reduce((s, m) => s + m.bytes, 0);
      expect(bytes).toBeGreaterThan(0);
      expect(info.result!.maxbytes).toBeGreaterThan(0);
      expect(Object.keys(info.result!.items).every((k) => Number(k) <= 0 && Number(k) > -60)).toBe(true);
    } finally {
      await c.endAsync(true);
    }
  });

  it('a logged-in client uses SPIN/jsonrpc/q and gets its answer', async () => {
    const c = await mqtt.connectAsync(url(), {
      reconnectPeriod: 0,
      username: TEST_LOGIN.user,
      password: TEST_LOGIN.password,
    });
    try {
      const replies: string[] = [];
      c.on('message', (t, p) => t === 'SPIN/jsonrpc/a' && replies.push(p.toString()));
      await c.subscribeAsync('SPIN/jsonrpc/a');
      await c.publishAsync(
        'SPIN/jsonrpc/q',
        JSON.stringify({ jsonrpc: '2.0', id: 'm1', method: 'list_iplist', params: { list: 'block' } }),
      );
      await waitFor(() => replies.length > 0, { timeoutMs: 5000 });
      expect(JSON.parse(replies[0])).toEqual({ jsonrpc: '2.0', id: 'm1', result: [] });
    } finally {
      await c.endAsync(true);
    }
  });
});
