// The SPIN web view's request handler: the page and its scripts straight from
// the source tree (examples/spin/io/web/static, no build step), vis-network and
// mqtt.js straight from node_modules (no CDN), and a small config document
// telling the page where the broker's WebSocket listener is.
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WebHandler } from '../contract.js';

export interface WebOptions {
  /** WebSocket URL of the MQTT broker the page subscribes to; undefined = same host, port 1884, path /mqtt. */
  readonly mqttWsUrl?: string;
  /** Repository root holding examples/ and node_modules/ (default: found upward from this module). */
  readonly root?: string;
}

/** Where the page is; `/spin_graph/graph.html` is SPIN's own address for its bubble app. */
export const PAGE_PATHS = ['/', '/index.html', '/spin_graph/graph.html', '/spin_graph/', '/spin_graph'];
export const CONFIG_PATH = '/spin_web/config.json';
const STATIC_PREFIX = '/static/';

/** Vendored assets served from node_modules, by URL path. */
export const VENDOR_ASSETS: Readonly<Record<string, string>> = {
  '/vendor/vis-network.min.js': 'vis-network/standalone/umd/vis-network.min.js',
  '/vendor/mqtt.min.js': 'mqtt/dist/mqtt.min.js',
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// vis-network sets inline styles on its canvas and tooltips (hence 'unsafe-inline' for styles);
// mqtt.js runs its keepalive timer in a worker made from a blob. No other site may frame the page (a page
// that did could lay its own buttons over "block" and take a logged-in user's clicks), nor move its base
// URL, nor embed plugins.
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  // Sent to our own origin only: the capture link shows it came from this page (guard.ts fromOwnPage).
  'referrer-policy': 'same-origin',
};

export function createWebHandler(options: WebOptions = {}): WebHandler {
  const root = options.root ?? findRepoRoot(dirname(fileURLToPath(import.meta.url)));
  const staticDir = join(root, 'examples/spin/io/web/static');
  if (!existsSync(join(staticDir, 'index.html'))) {
    throw new Error(`SPIN web view: ${staticDir}/index.html not found (the page is served from the source tree)`);
  }
  const config = JSON.stringify({ mqttWsUrl: options.mqttWsUrl ?? null });

  return (req, res) => {
    const method = req.method ?? 'GET';
    const path = pathOf(req);
    if (path === undefined) return false;

    let send: (() => void) | undefined;
    if (PAGE_PATHS.includes(path)) send = () => sendFile(res, join(staticDir, 'index.html'), 'no-cache', method);
    else if (path === CONFIG_PATH) send = () => sendBody(res, 200, 'application/json', config, method);
    else if (path in VENDOR_ASSETS) send = () => sendVendor(res, root, VENDOR_ASSETS[path], method);
    else if (path.startsWith(STATIC_PREFIX)) {
      const file = insideDir(staticDir, path.slice(STATIC_PREFIX.length));
      if (file) send = () => sendFile(res, file, 'no-cache', method);
    }
    if (!send) return false;
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendBody(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', method);
      return true;
    }
    send();
    return true;
  };
}

/** The decoded URL path, or undefined when it cannot be decoded. */
function pathOf(req: IncomingMessage): string | undefined {
  try {
    return decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    return undefined;
  }
}

/** The file for a path below `dir`, or undefined when it escapes `dir` or is not a regular file. */
function insideDir(dir: string, relative: string): string | undefined {
  const file = resolve(dir, relative);
  if (!file.startsWith(dir + sep) || relative.includes('\0')) return undefined;
  try {
    return statSync(file).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

function sendVendor(res: ServerResponse, root: string, asset: string, method: string): void {
  const file = join(root, 'node_modules', asset);
  if (!existsSync(file)) {
    sendBody(
      res,
      500,
      'text/plain; charset=utf-8',
      `vendored asset node_modules/${asset} is missing (npm install)\n`,
      method,
    );
    return;
  }
  sendFile(res, file, 'public, max-age=3600', method);
}

function sendFile(res: ServerResponse, file: string, cacheControl: string, method: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    sendBody(res, 404, 'text/plain; charset=utf-8', 'not found\n', method);
    return;
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': size,
    'cache-control': cacheControl,
  });
  if (method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

function sendBody(res: ServerResponse, status: number, type: string, body: string, method: string): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache',
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/** The nearest directory upward holding flowgrab's package.json (source tree and dist/ alike). */
export function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'flowgrab') return dir;
      } catch {
        // not a readable package.json; keep going up
      }
    }
    if (dirname(dir) === dir) throw new Error(`SPIN web view: no flowgrab package.json above ${from}`);
  }
}
