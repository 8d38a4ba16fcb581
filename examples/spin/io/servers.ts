/**
 * The JSON-RPC transports of the SPIN example: a Unix stream socket with
 * spind's framing (one request per connection; the reply followed by `\n`,
 * then the connection closes) and HTTP `POST /spin_api/jsonrpc`. Unlike
 * spind, a request may arrive in several segments and be of any size up to
 * `maxRequestBytes`, and replies are never truncated.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { WebHandler } from './contract.js';
import type { HttpGuard } from './web/guard.js';

export type TextRpc = (body: string) => Promise<string | undefined>;

const MAX_REQUEST = 1 << 20;
/** How long a request that does not parse yet waits for more data. */
const PARTIAL_WAIT_MS = 300;

/** Resolves with the socket path once listening; a stale socket file (no listener) is replaced. */
export async function listenRpcSocket(path: string, rpc: TextRpc): Promise<Server> {
  let st: ReturnType<typeof lstatSync> | undefined;
  try {
    st = lstatSync(path);
  } catch {
    // nothing there
  }
  if (st && !st.isSocket()) throw new Error(`${path} exists and is not a socket: refusing to replace it`);
  if (st) {
    const alive = await new Promise<boolean>((resolve) => {
      const c = createConnection(path);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (alive) throw new Error(`${path}: another process is listening there`);
    unlinkSync(path);
  }
  // allowHalfOpen: a client that shuts down its side after writing (`echo … | socat - UNIX:…`)
  // still gets its reply; without it Node closes the socket at the client's FIN.
  const server = createServer({ allowHalfOpen: true }, (sock) => serveOne(sock, rpc));
  // The RPC changes the firewall and has no login: its socket is the app's user's alone (0600 from the umask at
  // bind time; a chmod after would leave a moment, and would follow a path someone swapped).
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const umask = process.umask(0o177);
    try {
      // Node binds synchronously inside listen() for a path; the umask is restored right after.
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  return server;
}

function serveOne(sock: Socket, rpc: TextRpc): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  let idle: NodeJS.Timeout | undefined;
  const answer = () => {
    if (done) return;
    done = true;
    clearTimeout(idle);
    // Reading is over: no wall-clock cut while the request runs (its work is bounded by the
    // request size, MAX_BATCH and the RPC limits), however long the firewall takes.
    sock.setTimeout(0);
    rpc(Buffer.concat(chunks).toString('utf8')).then(
      (reply) => (reply === undefined ? sock.end() : sock.end(`${reply}\n`)),
      () => sock.destroy(),
    );
  };
  // A client that connects and sends nothing (or half a request) for 10 s is dropped.
  sock.setTimeout(10_000, () => sock.destroy());
  sock.on('error', () => {});
  sock.on('data', (d) => {
    if (done) return;
    chunks.push(d);
    size += d.length;
    if (size > MAX_REQUEST) return answer();
    // A complete JSON text is the request (spind reads one); a partial one waits for the rest,
    // for the client's end, or for a pause in the data (then it is answered as it stands).
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      clearTimeout(idle);
      idle = setTimeout(answer, PARTIAL_WAIT_MS);
      return;
    }
    answer();
  });
  sock.on('end', answer);
  sock.on('close', () => clearTimeout(idle));
}

/**
 * HTTP: POST /spin_api/jsonrpc is the RPC; everything else goes to the web
 * view (404 when it declines). Every request passes the guard first (known
 * once the port is: until then requests are refused).
 */
export function createSpinHttp(rpc: TextRpc, web: WebHandler, guard: () => HttpGuard | undefined): HttpServer {
  return createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const g = guard();
    if (!g) {
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('starting\n');
      return;
    }
    if (path === '/spin_api/jsonrpc') {
      if (req.method !== 'POST') {
        res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('use POST\n');
        return;
      }
      void g.admit(req, res, true).then((admitted) => {
        if (!admitted) {
          req.resume();
          return;
        }
        readRpc(req, res, rpc);
      });
      return;
    }
    void g.admit(req, res, false).then((admitted) => {
      if (!admitted) return;
      try {
        if (web(req, res)) return;
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`${(err as Error).message}\n`);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    });
  });
}

/** Reads a JSON-RPC request's body (bounded) and answers it. */
function readRpc(req: IncomingMessage, res: ServerResponse, rpc: TextRpc): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (d: Buffer) => {
    size += d.length;
    if (size > MAX_REQUEST) {
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' }).end('request too large\n');
      req.destroy();
      return;
    }
    chunks.push(d);
  });
  req.on('end', () => {
    if (res.headersSent) return;
    rpc(Buffer.concat(chunks).toString('utf8')).then(
      (reply) => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(reply ?? '');
      },
      (err) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(err as Error).message}\n`),
    );
  });
}
