// `--web-root DIR`: a spinweb static tree (SIDN/spin `src/spinweb/static`)
// served at the same origin as `/spin_api/jsonrpc`, so SPIN's own bubble app
// runs unchanged in front of this example. spinweb's lookup order: `x`, else
// `x.gz` (pre-compressed), else `x.html`, else `x/index.html`. Unlike
// spinweb, a `.gz` twin is preferred whenever the client accepts gzip, a
// client that does not gets it decompressed, and a Content-Type is set.
// Nothing outside DIR is reachable: no `..`, no NUL, no symlink out of it.
import { closeSync, createReadStream, readlinkSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { type OpenRegular, openRegular } from 'flowgrab';
import type { WebHandler } from '../contract.js';

/**
 * On every answer: no other site may frame these pages (they hold block buttons a framing page could lay a
 * decoy over). Only framing is limited: spinweb's own scripts and styles are not ours to vouch for.
 */
const NO_FRAMING = { 'x-frame-options': 'DENY', 'content-security-policy': "frame-ancestors 'none'" } as const;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Longest URL path looked at; longer ones are not files of a spinweb tree. */
const MAX_PATH = 1024;

export function createWebRootHandler(dir: string): WebHandler {
  const root = realpathSync(dir);
  // A name is opened only when it leads to a regular file inside the tree, so no device or terminal outside it is
  // ever opened; and what was opened is checked again, on the open file: whoever can write inside the tree cannot
  // swap in a symlink out of it (or a FIFO) between the two. Opened without blocking (a FIFO cannot hold a thread
  // of the pool) and never as a controlling terminal.
  const open = (file: string): OpenRegular | undefined => {
    const inside = (real: string) => real.startsWith(root + sep);
    let f: OpenRegular | undefined;
    try {
      if (!inside(realpathSync(file)) || !statSync(file).isFile()) return undefined;
      f = openRegular(file);
    } catch {
      return undefined;
    }
    if (!f) return undefined;
    try {
      if (inside(readlinkSync(`/proc/self/fd/${f.fd}`))) return f;
    } catch {
      // not ours to serve
    }
    closeSync(f.fd);
    return undefined;
  };
  return (req, res) => {
    const path = urlPath(req);
    if (path === undefined) return false;
    const gzipOk = acceptsGzip(req.headers['accept-encoding']);
    const base = resolve(root, `.${path}`);
    if (base !== root && !base.startsWith(root + sep)) return false;
    const candidates = path.endsWith('/')
      ? [`${base}${sep}index.html`]
      : [base, `${base}.html`, `${base}${sep}index.html`];
    for (const file of candidates) {
      const plain = open(file);
      const gz = open(`${file}.gz`);
      if (!plain && !gz) continue;
      const useGz = gz !== undefined && (gzipOk || !plain);
      const [chosen, other] = useGz ? [gz, plain] : [plain as OpenRegular, gz];
      if (other) closeSync(other.fd);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        closeSync(chosen.fd);
        res
          .writeHead(405, { ...NO_FRAMING, allow: 'GET, HEAD', 'content-type': 'text/plain' })
          .end('method not allowed\n');
        return true;
      }
      send(req, res, file, chosen, useGz, gzipOk);
      return true;
    }
    // A directory asked for without its slash: spinweb redirects to it.
    if (!path.endsWith('/') && isDir(base)) {
      res.writeHead(302, { ...NO_FRAMING, location: `${path.split('/').pop()}/` }).end();
      return true;
    }
    return false;
  };
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  file: OpenRegular,
  compressed: boolean,
  gzipOk: boolean,
): void {
  const headers: Record<string, string | number> = {
    ...NO_FRAMING,
    'content-type': TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
    vary: 'accept-encoding',
  };
  const decompress = compressed && !gzipOk;
  if (compressed && gzipOk) headers['content-encoding'] = 'gzip';
  if (!decompress) headers['content-length'] = file.st.size;
  // A file that shrank since it was opened fails the response instead of leaving its client waiting for the rest.
  if (!decompress) res.strictContentLength = true;
  res.writeHead(200, headers);
  if (req.method === 'HEAD' || file.st.size === 0) {
    closeSync(file.fd);
    res.end();
    return;
  }
  // At most the size it had when opened: a file growing meanwhile cannot overrun the Content-Length. pipeline
  // closes the file when the client goes away mid-way (pipe() kept it open).
  const stream = createReadStream('', { fd: file.fd, start: 0, end: file.st.size - 1 });
  const done = (err: unknown) => {
    if (err) res.destroy();
  };
  if (decompress) pipeline(stream, createGunzip(), res, done);
  else pipeline(stream, res, done);
}

function urlPath(req: IncomingMessage): string | undefined {
  const raw = (req.url ?? '/').split('?')[0];
  if (raw.length > MAX_PATH) return undefined;
  try {
    const p = decodeURIComponent(raw);
    return p.startsWith('/') && !p.includes('\0') && !p.includes('\\') ? p : undefined;
  } catch {
    return undefined;
  }
}

function acceptsGzip(header: string | string[] | undefined): boolean {
  const v = Array.isArray(header) ? header.join(',') : (header ?? '');
  return v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .some((s) => /^(gzip|\*)(\s*;\s*q=(?!0(\.0*)?$)[\d.]+)?$/.test(s));
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
