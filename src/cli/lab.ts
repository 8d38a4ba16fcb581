#!/usr/bin/env node
/**
 * The lab by hand: `up` builds the home network and leaves it running (its
 * daemons are detached), `traffic` makes the clients talk, `down` removes it
 * all, `status` says what is there. One fixed id, so commands find the lab.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { run } from '../testing/lab/exec.js';
import { attachHomeNetwork, createHomeNetwork, destroyHomeNetwork, type HomeNetwork } from '../testing/lab/home.js';
import { isAlive } from '../testing/lab/netns.js';
import { labDir, labNamespaces, readOwner, readProcs } from '../testing/lab/state.js';
import { generateTraffic } from '../testing/lab/traffic.js';

const ID = 'fglab';
const USAGE = 'usage: flowgrab-lab <up|traffic|down|status> [--rounds N]';

class UsageError extends Error {}

const self = `node ${relative(process.cwd(), process.argv[1] ?? 'dist/src/cli/lab.js')}`;
const say = (line = '') => console.log(line);

async function up(): Promise<void> {
  const old = await destroyHomeNetwork(ID);
  if (old.found) say(`removed the previous ${ID} lab (${old.namespaces.length} namespaces)`);
  const t0 = performance.now();
  const home = await createHomeNetwork({ id: ID, persistent: true });
  say(`lab ${ID} is up (${Math.round(performance.now() - t0)} ms); state, logs, leases: ${home.dir}`);
  say();
  describe(home);
  const c1 = home.clients[0]!.ns.name;
  const r = home.router.name;
  const s = home.server;
  say();
  say('try:');
  for (const cmd of [
    `ip netns exec ${c1} dig @${home.routerLan.ipv4} www.shop.test`,
    `ip netns exec ${c1} dig @${home.routerLan.ipv6} AAAA server.wan.test`,
    `ip netns exec ${c1} ping -c 2 ${s.ipv4}`,
    `echo hello | ip netns exec ${c1} socat - TCP:${s.ipv4}:${s.tcpPort}`,
    `echo hello | ip netns exec ${c1} socat -t 0.5 - UDP:${s.ipv4}:${s.udpPort}`,
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | ip netns exec ${c1} socat - TCP6:[${s.ipv6}]:${s.httpPort}`,
    `ip netns exec ${r} conntrack -L`,
    `ip netns exec ${r} conntrack -E          # live events; run traffic in another shell`,
    `ip -n ${r} neigh show dev ${home.routerLan.bridge}`,
    `ip netns exec ${r} nft list table inet fglab`,
    `${self} traffic`,
    `${self} down`,
  ]) {
    say(`  ${cmd}`);
  }
}

function describe(home: HomeNetwork): void {
  const l = home.routerLan;
  const w = home.routerWan;
  const s = home.server;
  const rows: string[][] = [
    [
      'router',
      home.router.name,
      `${l.bridge} ${l.ipv4} ${l.ipv6} ${l.mac}; ${w.iface} ${w.ipv4} ${w.ipv6}; dnsmasq, NAT`,
    ],
    ['wan', home.wan.name, `server ${s.ipv4} ${s.ipv6}: tcp+udp echo :${s.tcpPort}, http :${s.httpPort}`],
    ...home.clients.map((c) => [c.fqdn, c.ns.name, `${c.ipv4} ${c.ipv6} ${c.mac}`]),
  ];
  for (const [a, b, c] of rows) say(`  ${a!.padEnd(11)} ${b!.padEnd(14)} ${c}`);
  const zone = home.names;
  const cnames = Object.entries(zone.cnames).map(([a, t]) => `${a} → ${t}`);
  say(`  dns (TTL ${zone.ttl}): ${Object.keys(zone.hosts).join(', ')}; CNAME ${cnames.join(', ')}`);
}

async function traffic(rounds: number): Promise<boolean> {
  const home = await attachHomeNetwork(ID);
  const sum = await generateTraffic(home, { rounds });
  const sent = Object.entries(sum.sent).map(([k, v]) => `${v} ${k}`);
  say(`${sum.rounds} round(s) from ${home.clients.length} clients in ${sum.durationMs} ms: ${sent.join(', ')}`);
  for (const f of sum.failures) say(`  FAILED ${f}`);
  if (sum.failures.length === 0) say('all exchanges answered as expected');
  return sum.failures.length === 0;
}

async function down(): Promise<void> {
  const r = await destroyHomeNetwork(ID);
  if (!r.found) say(`lab ${ID} is not up: nothing to remove`);
  else say(`removed lab ${ID}: ${r.namespaces.length} namespaces, ${r.killed.length} processes stopped`);
}

async function status(): Promise<void> {
  const owner = readOwner(ID);
  const namespaces = await labNamespaces(ID);
  if (!owner && namespaces.length === 0) {
    say(`lab ${ID} is down`);
    return;
  }
  say(`lab ${ID}: ${owner ? `created ${owner.createdAt}` : 'no state directory (stray namespaces)'}`);
  say(`  namespaces: ${namespaces.sort().join(' ') || '(none)'}`);
  const procs = readProcs(labDir(ID)).map((p) => `${p.name} ${p.pid}${isAlive(p.pid) ? '' : ' (dead)'}`);
  say(`  processes: ${procs.join(', ') || '(none)'}`);
  if (namespaces.includes(`${ID}-router`)) {
    const ct = await run(['ip', 'netns', 'exec', `${ID}-router`, 'conntrack', '-C'], { allowFail: true });
    say(`  conntrack entries in ${ID}-router: ${ct.code === 0 ? ct.stdout.trim() : 'unknown'}`);
  }
  const leases = `${labDir(ID)}/dnsmasq.leases`;
  if (existsSync(leases)) say(`  dhcp leases: ${readFileSync(leases, 'utf8').split('\n').filter(Boolean).length}`);
}

function parseRounds(args: string[]): number {
  const i = args.indexOf('--rounds');
  if (i < 0) return 1;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError('--rounds takes a whole number from 1 to 100');
  return n;
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    say(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (!['up', 'traffic', 'down', 'status'].includes(cmd)) throw new UsageError(`unknown command ${cmd}`);
  if (process.getuid?.() !== 0) {
    throw new Error(`needs root (network namespaces, nftables, conntrack): sudo ${self} ${cmd}`);
  }
  if (cmd === 'up') await up();
  else if (cmd === 'traffic') return (await traffic(parseRounds(rest))) ? 0 : 1;
  else if (cmd === 'down') await down();
  else await status();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    console.error(`flowgrab-lab: ${msg.split('\n')[0]}`);
    if (err instanceof UsageError) console.error(USAGE);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
