/** Prometheus metrics for flowgrabd (--metrics HOST:PORT), read from the daemon at each scrape. */
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { Gauge, Registry } from 'prom-client';
import { parseHostPort } from '../util/hostport.js';
import type { Daemon } from './server.js';

export function metricsRegistry(d: Daemon): Registry {
  const reg = new Registry();
  const g = (name: string, help: string, labelNames: string[], collect: (gauge: Gauge) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [reg],
      collect() {
        this.reset();
        collect(this);
      },
    });
  g('flowgrabd_clients', 'Clients connected now', [], (x) => x.set(d.stats.clients));
  g('flowgrabd_connections_total', 'Connections accepted since start', [], (x) => x.set(d.stats.connections));
  g('flowgrabd_bad_frames_total', 'Malformed frames received', [], (x) => x.set(d.stats.badFrames));
  g('flowgrabd_denied_connections_total', 'Connections refused (peer unknown)', [], (x) =>
    x.set(d.stats.deniedConnections),
  );
  // Sums only: per-user or per-flow labels would show anyone on loopback who runs what (flow names are the
  // users' own words), and flows never authorized are not counted as running.
  const running = () => d.allFlows().filter((f) => !['created', 'populated', 'closed'].includes(f.stats.state));
  const sum = (name: string, help: string, value: (f: ReturnType<Daemon['allFlows']>[number]) => number) =>
    g(name, help, [], (x) => x.set(running().reduce((n, f) => n + value(f), 0)));
  g('flowgrabd_flows', 'Flows running now (instantiated), all users', [], (x) => x.set(running().length));
  sum('flowgrabd_records_sent', 'Records sent to clients by the running flows', (f) => f.sent);
  sum('flowgrabd_records_dropped_client', 'Records dropped because a client was not reading', (f) => f.dropped);
  sum('flowgrabd_records_dropped_buffer', 'Records dropped by flow buffers', (f) => f.stats.buffer.dropped);
  sum('flowgrabd_records_missed', 'Records that arrived while a flow was paused', (f) => f.stats.missed);
  g('flowgrabd_dropped_notices_total', 'Notices dropped while their client was not reading', [], (x) =>
    x.set(d.stats.droppedNotices),
  );
  g('flowgrabd_slow_clients_closed_total', 'Clients hung up on for not reading their replies', [], (x) =>
    x.set(d.stats.slowClientsClosed),
  );
  g('flowgrabd_peak_user_unread_bytes', 'The most unread output held for one user, all their connections', [], (x) =>
    x.set(d.stats.peakUserUnread),
  );
  g('flowgrabd_timed_out_connections_total', 'Connections closed by the idle or frame timeout', [], (x) =>
    x.set(d.stats.timedOutConnections),
  );
  g('flowgrabd_refused_connections_total', 'Connections refused by the connection caps', [], (x) =>
    x.set(d.stats.refusedConnections),
  );
  g(
    'flowgrabd_nfqueue_packets_total',
    'Packets of the shared NFQUEUE queue, by what became of them',
    ['outcome'],
    (x) => {
      const q = d.mux?.stats;
      if (!q) return;
      x.set({ outcome: 'received' }, q.received);
      x.set({ outcome: 'unclaimed' }, q.unclaimed);
      x.set({ outcome: 'delivered' }, q.delivered);
      x.set({ outcome: 'verdict' }, q.verdicts);
      x.set({ outcome: 'timed_out' }, q.timedOut);
      x.set({ outcome: 'defaulted' }, q.defaulted);
    },
  );
  g('flowgrabd_nfqueue_refused_verdicts_total', 'Verdicts refused (packet not delivered to that client)', [], (x) =>
    x.set(d.mux?.stats.refusedVerdicts ?? 0),
  );
  return reg;
}

export async function serveMetrics(d: Daemon, hostPort: string, allowHosts: readonly string[] = []): Promise<Server> {
  const { host, port } = parseHostPort(hostPort, '--metrics');
  const allowed = [...allowHosts, host];
  const reg = metricsRegistry(d);
  const timeouts = { headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 1_000 };
  const server = createServer({ ...timeouts, connectionsCheckingInterval: 1_000 }, async (req, res) => {
    if (!hostServed(req.headers.host, allowed)) {
      res.writeHead(421).end('this host name is not served here\n');
      return;
    }
    if (req.url !== '/metrics') {
      res.writeHead(404).end('try /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': reg.contentType }).end(await reg.metrics());
  });
  // Anyone on the box can connect: a bound on connections (past it, new ones are closed at once) and short
  // timeouts, so held-open connections cannot take the daemon's file descriptors, or keep the scrape away for long.
  server.maxConnections = METRICS_CONNECTIONS;
  // A connection that sends nothing is no request to time out: it goes after 5 s of silence.
  server.timeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

/**
 * A Host a scraper may use: an address, `localhost`, this machine's name (or its first label), the name the
 * endpoint listens on, or one of `allowed` (flowgrabd --metrics-allow-host). A web page whose own domain an
 * attacker pointed at this machine (DNS rebinding) sends that domain, and reads nothing.
 */
export function hostServed(host: string | undefined, allowed: readonly string[] = []): boolean {
  if (host === undefined) return true; // HTTP/1.0: no browser
  if (!URL.canParse(`http://${host}`)) return false;
  let name = new URL(`http://${host}`).hostname.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const bare = name.startsWith('[') ? name.slice(1, -1) : name;
  if (bare === '' || isIP(bare) !== 0 || bare === 'localhost') return true;
  const me = hostname().toLowerCase();
  return bare === me || bare === me.split('.')[0] || allowed.some((a) => a.toLowerCase().replace(/\.$/, '') === bare);
}

/** Connections the metrics endpoint holds at once (a scraper needs one). */
export const METRICS_CONNECTIONS = 16;
