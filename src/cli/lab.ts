/**
 * `flowgrab lab`: the home network by hand. `up` builds it and leaves it
 * running (its daemons are detached), `traffic` makes the clients talk,
 * `down` removes it all, `status` says what is there. Every command takes
 * `--prefix P` (default fglab): namespaces are P-router, P-wan, P-lan1 …, so
 * several labs can live side by side. `up` never replaces a lab that exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { FlowgrabError } from '../errors.js';
import { run } from '../testing/lab/exec.js';
import { attachHomeNetwork, createHomeNetwork, destroyHomeNetwork, type HomeNetwork } from '../testing/lab/home.js';
import { isAlive } from '../testing/lab/netns.js';
import { labDir, labNamespaces, readOwner, readProcs } from '../testing/lab/state.js';
import { generateTraffic } from '../testing/lab/traffic.js';

/** The default prefix: what `npm run lab` and the README's examples use. */
export const DEFAULT_PREFIX = 'fglab';
/** A prefix becomes namespace names (P-router …) and a state directory: short, plain. */
const PREFIX_RE = /^[a-z0-9]{2,12}$/;

const say = (line = '') => process.stdout.write(`${line}\n`);

async function up(prefix: string): Promise<void> {
  const self = (cmd: string) => `flowgrab lab ${cmd} --prefix ${prefix}`;
  const existing = await labNamespaces(prefix);
  if (readOwner(prefix) || existing.length > 0) {
    throw new FlowgrabError(
      'FG_ERR_INVALID_STATE',
      `a lab with prefix ${prefix} is already up (${existing.length} namespaces); remove it first: ${self('down')}`,
      { op: 'lab up' },
    );
  }
  const t0 = performance.now();
  const home = await createHomeNetwork({ id: prefix, persistent: true });
  say(`lab ${prefix} is up (${Math.round(performance.now() - t0)} ms); state, logs, leases: ${home.dir}`);
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
    self('traffic'),
    self('down'),
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

async function traffic(prefix: string, rounds: number): Promise<boolean> {
  const home = await attachHomeNetwork(prefix);
  const sum = await generateTraffic(home, { rounds });
  const sent = Object.entries(sum.sent).map(([k, v]) => `${v} ${k}`);
  say(`${sum.rounds} round(s) from ${home.clients.length} clients in ${sum.durationMs} ms: ${sent.join(', ')}`);
  for (const f of sum.failures) say(`  FAILED ${f}`);
  if (sum.failures.length === 0) say('all exchanges answered as expected');
  return sum.failures.length === 0;
}

async function down(prefix: string): Promise<void> {
  const r = await destroyHomeNetwork(prefix);
  if (!r.found) say(`lab ${prefix} is not up: nothing to remove`);
  else say(`removed lab ${prefix}: ${r.namespaces.length} namespaces, ${r.killed.length} processes stopped`);
}

async function status(prefix: string): Promise<void> {
  const owner = readOwner(prefix);
  const namespaces = await labNamespaces(prefix);
  if (!owner && namespaces.length === 0) {
    say(`lab ${prefix} is down`);
    return;
  }
  say(`lab ${prefix}: ${owner ? `created ${owner.createdAt}` : 'no state directory (stray namespaces)'}`);
  say(`  namespaces: ${namespaces.sort().join(' ') || '(none)'}`);
  const procs = readProcs(labDir(prefix)).map((p) => `${p.name} ${p.pid}${isAlive(p.pid) ? '' : ' (dead)'}`);
  say(`  processes: ${procs.join(', ') || '(none)'}`);
  if (namespaces.includes(`${prefix}-router`)) {
    const ct = await run(['ip', 'netns', 'exec', `${prefix}-router`, 'conntrack', '-C'], { allowFail: true });
    say(`  conntrack entries in ${prefix}-router: ${ct.code === 0 ? ct.stdout.trim() : 'unknown'}`);
  }
  const leases = `${labDir(prefix)}/dnsmasq.leases`;
  if (existsSync(leases)) say(`  dhcp leases: ${readFileSync(leases, 'utf8').split('\n').filter(Boolean).length}`);
}

const prefixArg = (v: string) => {
  if (!PREFIX_RE.test(v)) throw new InvalidArgumentError('--prefix takes 2 to 12 lower-case letters and digits');
  return v;
};
const roundsArg = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 100)
    throw new InvalidArgumentError('--rounds takes a whole number from 1 to 100');
  return n;
};

function needsRoot(cmd: string): void {
  if (process.getuid?.() !== 0) {
    throw new FlowgrabError(
      'FG_ERR_PERMISSION',
      `lab ${cmd} needs root (network namespaces, nftables, conntrack): sudo flowgrab lab ${cmd}`,
      { op: 'lab' },
    );
  }
}

/** `flowgrab lab up|traffic|down|status [--prefix P]`. */
export function labCommand(): Command {
  const lab = new Command('lab').description(
    'a simulated home network in namespaces (router with dnsmasq and NAT, clients, a WAN server), for trying flowgrab',
  );
  const withPrefix = (c: Command) =>
    c.option('--prefix <p>', 'namespace prefix: P-router, P-wan, P-lan1 …', prefixArg, DEFAULT_PREFIX);
  withPrefix(lab.command('up'))
    .description('build the lab and leave it running (refuses when a lab with this prefix is up)')
    .action(async (o: { prefix: string }) => {
      needsRoot('up');
      await up(o.prefix);
    });
  withPrefix(lab.command('traffic'))
    .description("make the lab's clients talk (DNS, ping, TCP, UDP, HTTP; IPv4 and IPv6)")
    .option('--rounds <n>', 'rounds of traffic, 1-100', roundsArg, 1)
    .action(async (o: { prefix: string; rounds: number }) => {
      needsRoot('traffic');
      if (!(await traffic(o.prefix, o.rounds))) process.exitCode = 1;
    });
  withPrefix(lab.command('down'))
    .description('remove the lab: namespaces, processes, state')
    .action(async (o: { prefix: string }) => {
      needsRoot('down');
      await down(o.prefix);
    });
  withPrefix(lab.command('status'))
    .description('what of the lab is there')
    .action(async (o: { prefix: string }) => {
      needsRoot('status');
      await status(o.prefix);
    });
  return lab;
}
