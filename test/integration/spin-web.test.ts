// The SPIN web view in Debian's headless Chromium (playwright-core): the page
// and its vendored scripts come from the app, live traffic arrives over
// MQTT-over-WebSocket from the embedded broker, and the buttons call the
// JSON-RPC. First against a fake core (the page's own behaviour), then
// against the whole app on the home-network lab (blocking cuts a real
// connection).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpinApp, startSpin } from '../../examples/spin/app.js';
import { startMqtt } from '../../examples/spin/io/mqtt.js';
import { createWebHandler } from '../../examples/spin/io/web/serve.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork, type LabClient } from '../../src/testing/lab/index.js';
import { TEST_LOGIN, testCredentials } from '../helpers/spin-core.js';
import { FakeSpinCore, serveSpinHttp, spin } from '../helpers/spin-fake-core.js';

/** expect.poll with a bound a loaded machine meets (vitest's default is 1 s); it still fails when the fact never comes. */
const poll = <T>(fn: () => T, options: { timeout?: number; interval?: number } = {}) =>
  expect.poll(fn, { timeout: 30_000, ...options });

const ROOT = join(import.meta.dirname, '../..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface GraphSnapshot {
  nodes: { id: number; label: string; kind?: string }[];
  edges: { id: string; from: number; to: number; label: string }[];
}

/** The page's developer-tools handle (`window.spinView`), typed for page.evaluate. */
interface SpinView {
  model: { nodes: Map<number, { id: number; ips: string[] }> };
  graph: {
    network: {
      stopSimulation(): void;
      getPositions(ids: number[]): Record<number, { x: number; y: number }>;
      canvasToDOM(p: { x: number; y: number }): { x: number; y: number };
    };
  };
}

let browser: Browser;
beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
});

/** A page that fails the test on script errors and on any request leaving the app. */
async function openPage(
  url: string,
  httpCredentials?: { username: string; password: string },
): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, httpCredentials });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  const origin = new URL(url).origin;
  await context.route('**/*', (route) => {
    const target = new URL(route.request().url());
    if (target.origin === origin) return route.continue();
    problems.push(`request outside the app: ${target.href}`);
    return route.abort();
  });
  await page.goto(url);
  return { page, problems };
}

describe('web view against a fake core', () => {
  it('shows devices, draws live traffic, blocks a device flow through the RPC, and follows merges and restarts', async () => {
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: 'embedded', tcpPort: 0, wsPort: 0 });
    const http = await serveSpinHttp(core, createWebHandler({ mqttWsUrl: bridge.wsUrl }));
    try {
      const { page, problems } = await openPage(`${http.url}/`);
      await poll(() => page.locator('#mqtt-status').getAttribute('data-state')).toBe('connected');
      const cards = page.locator('li.device');
      await poll(() => cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-mac')))).toEqual([
        '02:00:00:00:77:11',
        '02:00:00:00:77:12',
        '02:00:00:00:77:13',
      ]);
      await poll(() => cards.first().locator('.name').textContent()).toBe('laptop');

      // Live traffic reaches the graph and the totals line.
      core.emitTraffic(2048, 3);
      await poll(() => page.locator('#totals').textContent()).toBe('2.0 KiB/s · 3 pkt/s');

      // traffic, dnsquery and blocked messages each draw their edge, labelled with the service.
      const graph = () =>
        page.evaluate(() =>
          (globalThis as unknown as { spinView: { graph: { snapshot(): GraphSnapshot } } }).spinView.graph.snapshot(),
        );
      const flow = { from: 2, to: 4, protocol: 6, from_port: 50_000, to_port: 443, size: 10, count: 1 };
      core.messages.next(
        spin('SPIN/traffic', {
          command: 'traffic',
          argument: '',
          result: { flows: [flow], timestamp: 1, total_size: 10, total_count: 1 },
        }),
      );
      core.messages.next(
        spin('SPIN/traffic', { command: 'dnsquery', result: { from: 3, queriednode: 4, query: 'cdn.shop.test.' } }),
      );
      core.messages.next(spin('SPIN/traffic', { command: 'blocked', result: { ...flow, from: 1, to_port: 8443 } }));
      await poll(async () => (await graph()).edges.find((e) => e.id === 'traffic:2>4')?.label).toMatch(/https/);
      await poll(async () => (await graph()).edges.find((e) => e.id === 'dns:3>4')).toBeDefined();
      await poll(async () => (await graph()).edges.find((e) => e.id === 'blocked:1>4')?.label).toBe('https-alt');
      const labels = Object.fromEntries((await graph()).nodes.map((n) => [n.id, n.label]));
      expect(labels).toEqual({ 1: 'laptop', 2: '02:00:00:00:77:12', 3: 'tv', 4: 'cdn.shop.test' });

      const laptop = page.locator('li.device[data-mac="02:00:00:00:77:11"]');
      const row = laptop.locator('tr.flow[data-peer="4"]');
      await poll(() => row.locator('td').first().textContent()).toBe('cdn.shop.test');
      await row.locator('button[data-action="block-flow"]').click();
      await poll(() => core.flowBlocks.has('02:00:00:00:77:11/4')).toBe(true);
      await poll(() => row.getAttribute('class')).toBe('flow blocked');
      await page.screenshot({ path: join(ARTIFACTS, 'spin-web-fake.png') });
      await row.locator('button[data-action="unblock-flow"]').click();
      await poll(() => core.flowBlocks.size).toBe(0);
      await poll(async () => (await graph()).edges.some((e) => e.id === 'blocked:1>4')).toBe(false);

      // A node merged away leaves the device list; serverRestart reloads the page.
      core.messages.next(spin('SPIN/traffic/admin', { command: 'nodeMerged', result: { id: 3, 'merged-to': 1 } }));
      core.messages.next({ topic: 'SPIN/traffic/node/3', payload: '', retain: true });
      await poll(() => cards.count()).toBe(2);
      await poll(async () => (await graph()).nodes.map((n) => n.id).sort()).toEqual([1, 2, 4]);
      expect((await graph()).edges.filter((e) => e.from === 3 || e.to === 3)).toEqual([]);
      // nodeDeleted removes the node from the view too (SPIN's UI does not, §7.2).
      core.messages.next(spin('SPIN/traffic/admin', { command: 'nodeDeleted', result: { id: 2 } }));
      core.messages.next({ topic: 'SPIN/traffic/node/2', payload: '', retain: true });
      await poll(() => cards.count()).toBe(1);
      await poll(async () => (await graph()).nodes.map((n) => n.id).sort()).toEqual([1, 4]);
      core.nodes.delete(2);
      core.nodes.delete(3);
      await page.evaluate(() => {
        (globalThis as { beforeRestart?: boolean }).beforeRestart = true;
      });
      core.messages.next(spin('SPIN/traffic', { command: 'serverRestart' }));
      await poll(() => page.evaluate(() => 'beforeRestart' in globalThis)).toBe(false);
      await poll(() => cards.count()).toBe(1);
      expect(problems).toEqual([]);
      await page.context().close();
    } finally {
      await http.close();
      await bridge.close();
    }
  });
});

describe('broker address', () => {
  it('SPIN’s ?mqtt_host= and ?mqtt_port= override the configured WebSocket URL, IPv6 literals included', async () => {
    const core = new FakeSpinCore();
    const bridge = await startMqtt(core, { broker: 'embedded', host: '::1', tcpPort: 0, wsPort: 0 });
    // The configured URL points nowhere; only the query parameters lead to the broker.
    // The page comes from [::1]; the configured URL points nowhere: only the query parameters lead to the broker.
    const http = await serveSpinHttp(core, createWebHandler({ mqttWsUrl: 'ws://192.0.2.1:1/mqtt' }), '::1');
    try {
      const port = new URL(bridge.wsUrl as string).port;
      const { page, problems } = await openPage(`${http.url}/spin_graph/graph.html?mqtt_host=::1&mqtt_port=${port}`);
      await poll(() => page.locator('#mqtt-status').textContent()).toBe(`connected to ws://[::1]:${port}/mqtt`);
      await poll(() => page.locator('li.device').count()).toBe(3);
      expect(problems).toEqual([]);
      await page.context().close();
      // Another host than the page's or the configured broker's is ignored (a link's author's broker).
      const other = await openPage(`${http.url}/spin_graph/graph.html?mqtt_host=203.0.113.9&mqtt_port=${port}`);
      await poll(() => other.page.locator('#mqtt-status').getAttribute('data-url')).toBe(`ws://192.0.2.1:${port}/mqtt`);
      await other.page.context().close();
    } finally {
      await http.close();
      await bridge.close();
    }
  });
});

describe('web view files', () => {
  it('finds the page from the built module in dist/ too (the CLI runs from there)', async () => {
    const built = (await import(
      join(ROOT, 'dist/examples/spin/io/web/serve.js')
    )) as typeof import('../../examples/spin/io/web/serve.js');
    const http = await serveSpinHttp(new FakeSpinCore(), built.createWebHandler({}));
    try {
      const page = await fetch(`${http.url}/`);
      expect(await page.text()).toContain('<script type="module" src="/static/js/main.js">');
      expect(await (await fetch(`${http.url}/spin_web/config.json`)).json()).toEqual({ mqttWsUrl: null });
      expect((await fetch(`${http.url}/vendor/mqtt.min.js`)).status).toBe(200);
    } finally {
      await http.close();
    }
  });

  it('another site cannot frame the page (its buttons under a decoy: clickjacking)', async () => {
    const http = await serveSpinHttp(new FakeSpinCore(), createWebHandler({ mqttWsUrl: 'ws://127.0.0.1:1/mqtt' }));
    // The other site: a page on another port of this host, framing the SPIN page.
    const other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<iframe id="f" src="${http.url}/spin_graph/graph.html" width="800" height="600"></iframe>`);
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const blocked = page.waitForEvent('console', {
        predicate: (m) => /frame-ancestors|X-Frame-Options/i.test(m.text()),
        timeout: 30_000,
      });
      await page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      await blocked;
      // The frame holds no SPIN page: nothing of it rendered, no script of it ran.
      const framed = page.frames().find((f) => f !== page.mainFrame());
      expect(await framed?.evaluate('document.querySelector("script[src]") === null').catch(() => true)).toBe(true);
      // Opened directly, the same page loads.
      const direct = await context.newPage();
      await direct.goto(`${http.url}/spin_graph/graph.html`);
      expect(await direct.evaluate('document.querySelector("script[src]") !== null')).toBe(true);
    } finally {
      await context.close();
      other.close();
      await http.close();
    }
  });

  it('serves the page, its scripts and vendored assets, and nothing outside them', async () => {
    const http = await serveSpinHttp(new FakeSpinCore(), createWebHandler({ mqttWsUrl: 'ws://127.0.0.1:1/mqtt' }));
    try {
      const get = (path: string, init?: RequestInit) => fetch(`${http.url}${path}`, init);
      const page = await get('/spin_graph/graph.html');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      const html = await page.text();
      for (const src of html.matchAll(/(?:src|href)="(\/[^"]+)"/g)) {
        const asset = await get(src[1]);
        expect(asset.status, src[1]).toBe(200);
        expect(Number(asset.headers.get('content-length')), src[1]).toBeGreaterThan(100);
      }
      expect(await (await get('/spin_web/config.json')).json()).toEqual({ mqttWsUrl: 'ws://127.0.0.1:1/mqtt' });
      expect((await get('/static/../serve.ts')).status).toBe(404);
      expect((await get('/static/%2e%2e/serve.ts')).status).toBe(404);
      expect((await get('/static/js/nothing.js')).status).toBe(404);
      expect((await get('/static/js/main.js', { method: 'DELETE' })).status).toBe(405);
    } finally {
      await http.close();
    }
  });
});

/** One echo exchange with the WAN server; false when the connection fails (1 s to connect, 2 s idle). */
async function echoes(home: HomeNetwork, client: LabClient): Promise<boolean> {
  const r = await client.ns.exec(
    ['socat', '-T', '2', '-', `TCP4:${home.server.ipv4}:${home.server.tcpPort},connect-timeout=1`],
    { input: 'ping\n', allowFail: true, timeoutMs: 5000 },
  );
  return r.code === 0 && r.stdout === 'ping\n';
}

describe('web view of the whole app on the home network', () => {
  let home: HomeNetwork;
  let app: SpinApp;
  let stateDir: string;

  beforeAll(async () => {
    home = await createHomeNetwork();
    stateDir = mkdtempSync(join(tmpdir(), 'fg-spin-web-'));
    app = await startSpin({
      netns: home.router.name,
      httpPort: 0,
      mqtt: { broker: 'embedded', tcpPort: 0, wsPort: 0 },
      stateDir,
      leaseFile: home.leaseFile,
      credentialsFile: testCredentials(stateDir),
    });
  });
  afterAll(async () => {
    await app?.close();
    await home?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('shows the three LAN devices; a click on block cuts that device’s connection to the WAN server and no other; Block node on the server’s graph node cuts every client', async () => {
    const [laptop, phone] = home.clients;
    await generateTraffic(home, { rounds: 1, ipv6: false });
    for (const c of home.clients) expect(await echoes(home, c)).toBe(true);

    const { page, problems } = await openPage(`${app.httpUrl}/spin_graph/graph.html`, {
      username: TEST_LOGIN.user,
      password: TEST_LOGIN.password,
    });
    await poll(() => page.locator('#mqtt-status').getAttribute('data-state')).toBe('connected');
    const macs = () => page.locator('li.device').evaluateAll((els) => els.map((e) => e.getAttribute('data-mac')));
    // The router's WAN neighbour (the server) is a device too, as in SPIN: any host in the neighbour table.
    await poll(macs, { timeout: 10_000 }).toEqual(expect.arrayContaining(home.clients.map((c) => c.mac)));

    // The laptop's peer holding the server's address, with live counters from the conntrack feed.
    const card = page.locator(`li.device[data-mac="${laptop.mac}"]`);
    const row = card.locator(`tr.flow[data-peer-ips~="${home.server.ipv4}"]`);
    await poll(() => row.count(), { timeout: 10_000 }).toBe(1);
    await row.locator('button[data-action="block-flow"]').click();
    await poll(() => row.getAttribute('class')).toBe('flow blocked');

    expect(await echoes(home, laptop)).toBe(false);
    expect(await echoes(home, phone)).toBe(true);
    // Live traffic keeps arriving over MQTT while the block holds.
    await poll(() => page.locator('#totals').textContent(), { timeout: 5000 }).toMatch(/\/s/);
    await page.screenshot({ path: join(ARTIFACTS, 'spin-web.png') });

    await row.locator('button[data-action="unblock-flow"]').click();
    await poll(() => row.getAttribute('class')).toBe('flow');
    expect(await echoes(home, laptop)).toBe(true);

    // Click the server's node in the graph, then "Block node": the block list holds its address, no client gets through.
    const serverId = await page.evaluate(
      (ip) =>
        [...(globalThis as unknown as { spinView: SpinView }).spinView.model.nodes.values()].find((n) =>
          n.ips.includes(ip),
        )?.id,
      home.server.ipv4,
    );
    expect(serverId).toBeTypeOf('number');
    const at = await page.evaluate((id) => {
      const network = (globalThis as unknown as { spinView: SpinView }).spinView.graph.network;
      network.stopSimulation();
      return network.canvasToDOM(network.getPositions([id])[id]);
    }, serverId as number);
    const box = await page.locator('#graph').boundingBox();
    await page.mouse.click((box?.x ?? 0) + at.x, (box?.y ?? 0) + at.y);
    await page.locator('#selection button[data-action="block-node"]').click();
    await poll(() =>
      page
        .locator('#lists [data-list="block"] [data-ip]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-ip'))),
    ).toContain(home.server.ipv4);
    for (const c of home.clients) expect(await echoes(home, c)).toBe(false);
    await page.locator('#selection button[data-action="unblock-node"]').click();
    await poll(() => page.locator('#lists [data-list="block"] [data-ip]').count()).toBe(0);
    expect(await echoes(home, laptop)).toBe(true);
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
