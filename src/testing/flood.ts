/**
 * A UDP flow generator for tests and benchmarks: one datagram to each of
 * `count` distinct loopback addresses (127.B.x.y, port 9), so each makes a
 * new conntrack entry. It runs as its own node process inside a netns.
 */
import { execFile, execFileSync } from 'node:child_process';

// Kept as source text so it runs with plain `node -e` wherever flowgrab is installed.
const SCRIPT = `
const [count, rate, base] = process.argv.slice(1).map(Number);
const s = require('node:dgram').createSocket('udp4');
const x = Buffer.from('x');
const t0 = process.hrtime.bigint();
const addr = (i) => '127.' + (base + Math.floor(i / 65024)) + '.' + (Math.floor(i / 254) % 256) + '.' + ((i % 254) + 1);
(async () => {
  let sent = 0;
  while (sent < count) {
    const n = Math.min(500, count - sent);
    await Promise.all(Array.from({ length: n }, (_, k) => new Promise((r) => s.send(x, 9, addr(sent + k), r))));
    sent += n;
    if (rate > 0) {
      const ahead = sent / rate - Number(process.hrtime.bigint() - t0) / 1e9;
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead * 1000));
    }
  }
  s.close();
  process.stdout.write((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3) + '\\n');
})();
`;

/** How many UDP flows to make, to where, from which namespace. */
export interface FloodOptions {
  /** Datagrams (= new flows) to send. */
  count: number;
  /** Per second; 0 = as fast as possible. */
  rate?: number;
  /** Second octet of the first address, so successive floods make fresh flows. */
  base?: number;
}

function argv(netns: string, o: FloodOptions): string[] {
  return [
    'netns',
    'exec',
    netns,
    process.execPath,
    '-e',
    SCRIPT,
    String(o.count),
    String(o.rate ?? 0),
    String(o.base ?? 1),
  ];
}

/** Floods from inside `netns`; resolves with the seconds it took. */
export function floodUdp(netns: string, o: FloodOptions, onSpawned?: () => void): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('ip', argv(netns, o), { timeout: 120_000 }, (err, stdout) =>
      err ? reject(err) : resolve(Number(stdout.trim())),
    );
    // The generator is forked off but has not sent yet (node takes tens of ms to start).
    onSpawned?.();
  });
}

/** The same, blocking this process's event loop until done: how tests make a reader fall behind. */
export function floodUdpSync(netns: string, o: FloodOptions): number {
  return Number(execFileSync('ip', argv(netns, o), { timeout: 120_000 }).toString().trim());
}

// DNS queries for `name` (type A) to server:53, ids counting up, paced; prints "sent received seconds".
const DNS_SCRIPT = `
const [server, name, count, rate, family] = process.argv.slice(1);
const n = Number(count), r = Number(rate);
const s = require('node:dgram').createSocket(family === '6' ? 'udp6' : 'udp4');
const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
const q = Buffer.concat([Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
let received = 0;
s.on('message', () => received++);
const t0 = process.hrtime.bigint();
(async () => {
  for (let i = 0; i < n; ) {
    const burst = Math.min(200, n - i);
    for (let k = 0; k < burst; k++, i++) { q.writeUInt16BE(i & 0xffff, 0); s.send(q, 53, server); }
    const ahead = r > 0 ? i / r - Number(process.hrtime.bigint() - t0) / 1e9 : 0;
    await new Promise((res) => (ahead > 0 ? setTimeout(res, ahead * 1000) : setImmediate(res)));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Late answers: wait until every query is answered, for half a second at most.
  for (const end = Date.now() + 500; received < n && Date.now() < end; ) await new Promise((res) => setTimeout(res, 5));
  s.close();
  process.stdout.write(n + ' ' + received + ' ' + seconds.toFixed(3) + '\\n');
})();
`;

/** How many DNS queries to send, where, from which namespace. */
export interface DnsFloodOptions {
  server: string;
  name: string;
  count: number;
  /** Queries per second; 0 = as fast as possible. */
  rate?: number;
}

/** Sends `count` DNS queries from inside `netns`; resolves with how many were sent and answered, and the seconds it took. */
export function floodDns(
  netns: string,
  o: DnsFloodOptions,
): Promise<{ sent: number; received: number; seconds: number }> {
  const family = o.server.includes(':') ? '6' : '4';
  const argv = [
    'netns',
    'exec',
    netns,
    process.execPath,
    '-e',
    DNS_SCRIPT,
    o.server,
    o.name,
    String(o.count),
    String(o.rate ?? 0),
    family,
  ];
  return new Promise((resolve, reject) => {
    execFile('ip', argv, { timeout: 300_000 }, (err, stdout) => {
      if (err) return reject(err);
      const [sent, received, seconds] = stdout.trim().split(' ').map(Number);
      resolve({ sent, received, seconds });
    });
  });
}
