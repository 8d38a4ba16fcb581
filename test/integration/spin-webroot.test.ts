// `--web-root DIR`: a spinweb-layout fixture tree (spin_graph/graph.html,
// its script only as a pre-compressed .gz) served by the app's HTTP server
// at the same origin as /spin_api/jsonrpc, behind the same login; Chromium
// runs the page and its RPC call; nothing outside DIR can be reached.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Credentials, Sessions } from '../../examples/spin/io/auth.js';
import { createSpinHttp } from '../../examples/spin/io/servers.js';
import { HttpGuard } from '../../examples/spin/io/web/guard.js';
import { createWebRootHandler } from '../../examples/spin/io/web/root.js';
import { createWebHandler } from '../../examples/spin/io/web/serve.js';
import { TEST_AUTHORIZATION, TEST_LOGIN, testCredentials } from '../helpers/spin-core.js';
import { FakeSpinCore } from '../helpers/spin-fake-core.js';
import { until } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'spin-webroot-'));
const root = join(dir, 'static');
const SECRET = 'outside the web root';
const core = new FakeSpinCore();
let url: string;
let close: () => Promise<void>;

const PAGE = `<!doctype html><html><head><title>SPIN graph</title>
<script src="js/spingraphs.js"></script></head><body><div id="lists">loading</div></body></html>`;
// What SPIN's page does first on connect: list_iplist over POST at its own origin.
const SCRIPT = `window.addEventListener('DOMContentLoaded', async () => {
  const r = await fetch('/spin_api/jsonrpc', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'list_iplist', params: { list: 'block' } }) });
  document.getElementById('lists').textContent = 'block list: ' + JSON.stringify((await r.json()).result);
});`;

beforeAll(async () => {
  mkdirSync(join(root, 'spin_graph/js'), { recursive: true });
  writeFileSync(join(root, 'spin_graph/graph.html'), PAGE);
  writeFileSync(join(root, 'spin_graph/js/spingraphs.js.gz'), gzipSync(SCRIPT));
  writeFileSync(join(root, 'spin_graph/style.css'), 'body { color: black }');
  writeFileSync(join(root, 'spin_graph/style.css.gz'), gzipSync('body { color: black }'));
  writeFileSync(join(dir, 'secret.txt'), SECRET);
  symlinkSync(join(dir, 'secret.txt'), join(root, 'spin_graph/link.txt'));
  core.lists.block.push('192.0.2.66');

  const own = createWebHandler({});
  const spinweb = createWebRootHandler(root);
  let guard: HttpGuard | undefined;
  const http = createSpinHttp(
    async (t) => JSON.stringify(await core.handleRpc(JSON.parse(t))),
    (req, res) => spinweb(req, res) || own(req, res),
    () => guard,
  );
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const { port } = http.address() as AddressInfo;
  const credentials = Credentials.load(testCredentials(dir));
  guard = new HttpGuard('127.0.0.1', port, { credentials, sessions: new Sessions() });
  url = `http://127.0.0.1:${port}`;
  close = () =>
    new Promise<void>((r) => {
      http.closeAllConnections();
      http.close(() => r());
    });
});

afterAll(async () => {
  await close?.();
  rmSync(dir, { recursive: true, force: true });
});

/** A GET with the raw path as given (no normalisation of `..` as fetch does). */
function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path, method, headers: { authorization: TEST_AUTHORIZATION, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${path}: no answer in 10 s`)));
    req.end();
  });
}

describe('--web-root', () => {
  it('serves SPIN’s page layout in Chromium, its gzipped script included, with the RPC at the same origin', async () => {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox'],
    });
    try {
      const context = await browser.newContext({
        httpCredentials: { username: TEST_LOGIN.user, password: TEST_LOGIN.password },
      });
      const page = await context.newPage();
      await page.goto(`${url}/spin_graph/graph.html`);
      await expect.poll(() => page.locator('#lists').textContent()).toBe('block list: ["192.0.2.66"]');
      expect(await page.title()).toBe('SPIN graph');
    } finally {
      await browser.close();
    }
  });

  it('sends .gz with Content-Encoding when gzip is accepted, decompressed otherwise; spinweb’s fallbacks', async () => {
    const zipped = await get('/spin_graph/js/spingraphs.js', { 'accept-encoding': 'gzip, deflate' });
    expect(zipped.status).toBe(200);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(zipped.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const plain = await get('/spin_graph/js/spingraphs.js', { 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(SCRIPT);
    const refused = await get('/spin_graph/js/spingraphs.js', { 'accept-encoding': 'gzip;q=0' });
    expect(refused.body.toString()).toBe(SCRIPT);
    expect((await get('/spin_graph/style.css', { 'accept-encoding': 'gzip' })).headers['content-encoding']).toBe(
      'gzip',
    );
    expect((await get('/spin_graph/style.css')).body.toString()).toBe('body { color: black }');
    expect((await get('/spin_graph/graph')).body.toString()).toBe(PAGE);
    const dirNoSlash = await get('/spin_graph');
    expect([dirNoSlash.status, dirNoSlash.headers.location]).toEqual([302, 'spin_graph/']);
    // No other site may frame the tree's pages (their block buttons under a decoy).
    for (const r of [plain, dirNoSlash, await get('/spin_graph/graph')]) {
      expect(r.headers['x-frame-options']).toBe('DENY');
      expect(r.headers['content-security-policy']).toBe("frame-ancestors 'none'");
    }
    const head = await get('/spin_graph/graph.html', {}, 'HEAD');
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(PAGE.length), 0]);
    expect((await get('/spin_graph/graph.html', {}, 'POST')).status).toBe(405);
    // Paths the tree does not have fall through to the app's own view (its config document here).
    expect((await get('/spin_web/config.json')).status).toBe(200);
  });

  it('cannot be left: .., encoded .., backslashes, NUL, symlinks out of the tree; and needs the login', async () => {
    for (const path of [
      '/../secret.txt',
      '/spin_graph/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/spin_graph/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/spin_graph/..%5c..%5csecret.txt',
      '/spin_graph/graph.html%00.txt',
      '/spin_graph/link.txt',
      `/${'a/'.repeat(600)}x`,
      '/%zz',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(404);
      expect(r.body.toString(), path).not.toContain(SECRET);
    }
    expect((await get('/spin_graph/graph.html', { authorization: '' })).status).toBe(401);
    expect((await get('/spin_graph/graph.html', { host: 'evil.example' })).status).toBe(421);
  });

  it('serves nothing swapped in after a check: a directory raced with a symlink out of the tree, a file with a FIFO', async () => {
    // The tree's owner (or anyone who may write in it) swaps, as fast as renames go, race/ with a symlink to a
    // directory outside, and pipes/data.txt with a FIFO that no one writes.
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(dir, 'outside/file.txt'), SECRET);
    mkdirSync(join(root, 'race'));
    writeFileSync(join(root, 'race/file.txt'), 'inside');
    symlinkSync(join(dir, 'outside'), join(root, 'race.link'));
    mkdirSync(join(root, 'pipes'));
    writeFileSync(join(root, 'pipes/data.txt'), 'data');
    execFileSync('mkfifo', [join(root, 'pipes/data.fifo')]);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const swapper = new Worker(
      `const { renameSync: mv } = require('node:fs');
      const { workerData: { root, stop } } = require('node:worker_threads');
      const flag = new Int32Array(stop);
      for (let n = 0; n < 2e6 && Atomics.load(flag, 0) === 0; n++) {
        mv(root + '/race', root + '/race.dir'); mv(root + '/race.link', root + '/race');
        mv(root + '/race', root + '/race.link'); mv(root + '/race.dir', root + '/race');
        mv(root + '/pipes/data.txt', root + '/pipes/data.keep'); mv(root + '/pipes/data.fifo', root + '/pipes/data.txt');
        mv(root + '/pipes/data.txt', root + '/pipes/data.fifo'); mv(root + '/pipes/data.keep', root + '/pipes/data.txt');
      }`,
      { eval: true, workerData: { root, stop: stop.buffer } },
    );
    const served = { race: 0, pipes: 0 };
    try {
      for (let i = 0; i < 300; i++)
        for (const [name, path, body] of [
          ['race', '/race/file.txt', 'inside'],
          ['pipes', '/pipes/data.txt', 'data'],
        ] as const) {
          // A FIFO opened for reading with no writer blocks: get() fails on a request not answered in 10 s.
          const r = await get(path, { 'accept-encoding': 'identity' });
          expect(r.body.toString(), path).not.toContain(SECRET);
          expect([200, 404], path).toContain(r.status);
          if (r.status === 200) {
            expect(r.body.toString(), path).toBe(body);
            served[name]++;
          }
        }
    } finally {
      Atomics.store(stop, 0, 1);
      await swapper.terminate();
    }
    // The swaps did not hide the files all the time: both were served while racing.
    expect(served.race).toBeGreaterThan(0);
    expect(served.pipes).toBeGreaterThan(0);
  });

  it('closes a file when its client goes away mid-way', async () => {
    const big = join(root, 'big.bin');
    writeFileSync(big, Buffer.alloc(32 << 20));
    const open = () => readdirSync('/proc/self/fd').filter((fd) => readlinkOr(`/proc/self/fd/${fd}`) === big).length;
    for (let i = 0; i < 20; i++)
      await new Promise<void>((resolve, reject) => {
        const u = new URL(url);
        const req = request(
          { host: u.hostname, port: u.port, path: '/big.bin', headers: { authorization: TEST_AUTHORIZATION } },
          (res) => {
            expect(res.statusCode).toBe(200);
            res.once('data', () => {
              res.destroy();
              resolve();
            });
          },
        );
        req.on('error', reject);
        req.end();
      });
    await until(() => open() === 0, 'the server closed the 20 files its gone clients asked for');
  });
});

function readlinkOr(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
