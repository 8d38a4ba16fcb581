import { resolveInZone } from './dns.js';
import type { RunOptions, RunResult } from './exec.js';
import type { HomeNetwork, LabClient } from './home.js';
import { HTTP_BODY } from './services.js';

/** How many rounds of traffic, from which clients. */
export interface TrafficOptions {
  /** Repetitions of the whole set of exchanges; default 1. */
  rounds?: number;
  /** Also use IPv6 (DNS over v6, ping -6, TCP/UDP/HTTP to the server's v6 address); default true. */
  ipv6?: boolean;
  /** Bound for each single command; default 20 s (a busy machine starts processes slowly). */
  timeoutMs?: number;
}

/** A DNS question a client asked and what came back. */
export interface DnsExchange {
  client: string;
  server: string;
  name: string;
  type: 'A' | 'AAAA';
  /** `dig +short` lines: CNAME targets (with trailing dot), then addresses. */
  answers: string[];
  /** The last answer is the address the zone data says the chain ends at. */
  ok: boolean;
}

/** One exchange a client made (ping, TCP, UDP, HTTP) and whether it was answered. */
export interface Exchange {
  client: string;
  kind: 'ping' | 'tcp' | 'udp' | 'http';
  family: 4 | 6;
  target: string;
  ok: boolean;
  /** What came back (echoed payload, HTTP status line) or why it failed. */
  detail: string;
}

/** What a round of traffic sent, and what failed. */
export interface TrafficSummary {
  rounds: number;
  dns: DnsExchange[];
  exchanges: Exchange[];
  sent: { dns: number; ping: number; tcp: number; udp: number; http: number };
  /** One line per exchange that did not get the expected answer. */
  failures: string[];
  durationMs: number;
}

type Exec = (argv: string[], opts?: RunOptions) => Promise<RunResult>;

/**
 * Makes every client talk: DNS (A, AAAA, the CNAME chain, its own name),
 * ping, TCP echo, UDP echo and HTTP to the WAN server. Every command is
 * bounded; failures are reported in the summary, not thrown.
 */
export async function generateTraffic(home: HomeNetwork, opts: TrafficOptions = {}): Promise<TrafficSummary> {
  const started = Date.now();
  const rounds = Math.max(1, opts.rounds ?? 1);
  const ipv6 = opts.ipv6 ?? true;
  // Generous: ~25 processes start at once, and a busy machine is slow to start them; a reply ends each wait early.
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const dns: DnsExchange[] = [];
  const exchanges: Exchange[] = [];
  for (let round = 1; round <= rounds; round++) {
    await Promise.all(
      home.clients.map(async (client) => {
        const exec: Exec = (argv, o) => client.ns.exec(argv, { allowFail: true, timeoutMs, ...o });
        const [d, e] = await Promise.all([
          Promise.all(dnsQueries(home, client, ipv6).map((q) => dig(exec, client, q))),
          Promise.all(exchangePlan(home, ipv6).map((p) => p(exec, client, round))),
        ]);
        dns.push(...d);
        exchanges.push(...e);
      }),
    );
  }
  const count = (kind: Exchange['kind']) => exchanges.filter((x) => x.kind === kind).length;
  const failures = [
    ...dns
      .filter((d) => !d.ok)
      .map((d) => `${d.client}: dig @${d.server} ${d.name} ${d.type} → ${d.answers.join(' ')}`),
    ...exchanges.filter((x) => !x.ok).map((x) => `${x.client}: ${x.kind} v${x.family} ${x.target}: ${x.detail}`),
  ];
  return {
    rounds,
    dns,
    exchanges,
    sent: { dns: dns.length, ping: count('ping'), tcp: count('tcp'), udp: count('udp'), http: count('http') },
    failures,
    durationMs: Date.now() - started,
  };
}

interface DnsQuery {
  server: string;
  name: string;
  type: 'A' | 'AAAA';
  expect: string | undefined;
}

function dnsQueries(home: HomeNetwork, client: LabClient, ipv6: boolean): DnsQuery[] {
  const q = (server: string, name: string, type: 'A' | 'AAAA'): DnsQuery => {
    const r = resolveInZone(home.names, name);
    return { server, name, type, expect: type === 'A' ? r.ipv4 : r.ipv6 };
  };
  const v4 = home.routerLan.ipv4;
  const list = [q(v4, 'www.shop.test', 'A'), q(v4, 'server.wan.test', 'AAAA'), q(v4, client.fqdn, 'A')];
  if (ipv6) list.push(q(home.routerLan.ipv6, 'www.shop.test', 'AAAA'));
  return list;
}

async function dig(exec: Exec, client: LabClient, q: DnsQuery): Promise<DnsExchange> {
  const r = await exec(['dig', '+short', '+time=5', '+tries=1', `@${q.server}`, q.name, q.type]);
  const answers = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const ok = r.code === 0 && q.expect !== undefined && answers.at(-1) === q.expect;
  return { client: client.name, server: q.server, name: q.name, type: q.type, answers, ok };
}

type Plan = (exec: Exec, client: LabClient, round: number) => Promise<Exchange>;

function exchangePlan(home: HomeNetwork, ipv6: boolean): Plan[] {
  const { server } = home;
  const targets: { family: 4 | 6; ip: string; socat: (port: number, proto: 'TCP' | 'UDP') => string }[] = [
    { family: 4, ip: server.ipv4, socat: (port, proto) => `${proto}4:${server.ipv4}:${port}` },
  ];
  if (ipv6) targets.push({ family: 6, ip: server.ipv6, socat: (port, proto) => `${proto}6:[${server.ipv6}]:${port}` });
  const plans: Plan[] = [];
  for (const t of targets) {
    const base = { family: t.family };
    plans.push(async (exec, client) => {
      const r = await exec(['ping', `-${t.family}`, '-n', '-c', '1', '-W', '5', t.ip]);
      const detail = r.code === 0 ? '1 reply' : `exit ${r.code}`;
      return { client: client.name, kind: 'ping', ...base, target: t.ip, ok: r.code === 0, detail };
    });
    plans.push(async (exec, client, round) => {
      const payload = `flowgrab ${client.name} round ${round} tcp v${t.family}\n`;
      const r = await exec(['socat', '-T', '3', '-', t.socat(server.tcpPort, 'TCP')], { input: payload });
      return echoResult(client, 'tcp', t.family, `${t.ip}:${server.tcpPort}`, payload, r);
    });
    plans.push(async (exec, client, round) => {
      const payload = `flowgrab ${client.name} round ${round} udp v${t.family}\n`;
      // UDP never signals EOF: -t bounds the wait for the echo after stdin ends.
      const r = await exec(['socat', '-t', '0.5', '-T', '3', '-', t.socat(server.udpPort, 'UDP')], { input: payload });
      return echoResult(client, 'udp', t.family, `${t.ip}:${server.udpPort}`, payload, r);
    });
    plans.push(async (exec, client) => {
      const request = 'GET / HTTP/1.0\r\nHost: server.wan.test\r\nUser-Agent: flowgrab-lab\r\n\r\n';
      const r = await exec(['socat', '-T', '3', '-', t.socat(server.httpPort, 'TCP')], { input: request });
      const status = r.stdout.split('\r\n')[0] ?? '';
      const body = r.stdout.split('\r\n\r\n').slice(1).join('\r\n\r\n');
      const ok = /^HTTP\/1\.[01] 200\b/.test(status) && body === HTTP_BODY;
      const detail = status || r.stderr.trim() || `exit ${r.code}`;
      return { client: client.name, kind: 'http', ...base, target: `${t.ip}:${server.httpPort}`, ok, detail };
    });
  }
  return plans;
}

function echoResult(
  client: LabClient,
  kind: 'tcp' | 'udp',
  family: 4 | 6,
  target: string,
  payload: string,
  r: RunResult,
): Exchange {
  const ok = r.code === 0 && r.stdout === payload;
  const detail = ok
    ? `echoed ${payload.length} bytes`
    : `got ${JSON.stringify(r.stdout)} (exit ${r.code}) ${r.stderr.trim()}`;
  return { client: client.name, kind, family, target, ok, detail };
}
