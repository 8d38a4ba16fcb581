import { join } from 'node:path';
import { FlowgrabError } from '../../errors.js';
import { type DnsZone, dnsmasqArgv } from './dns.js';
import { missingTools } from './exec.js';
import { Lab } from './lab.js';
import { Netns } from './netns.js';
import { startDnsmasq, startWanServers } from './services.js';
import { type DestroyResult, destroyLab, labDir, labNamespaces, readOwner, sweepStaleLabs } from './state.js';

/**
 * A simulated home network:
 *
 *   c1 c2 c3 (eth0, fixed MACs) ── lanN ┐
 *                                  router: br0 192.168.77.1 fd77::1, dnsmasq, conntrack, NAT
 *                                       └ wan0 198.51.100.1 ── eth0 wan: server 198.51.100.10
 *
 * IPv4 is masqueraded out of wan0; IPv6 is routed (the WAN has a route back to fd77::/64).
 */

export interface LabClient {
  name: string;
  /** DNS name served by the router (`--host-record`). */
  fqdn: string;
  ns: Netns;
  mac: string;
  ipv4: string;
  ipv6: string;
}

/** A simulated home network: router, WAN server, clients, their names and addresses. */
export interface HomeNetwork {
  id: string;
  router: Netns;
  wan: Netns;
  clients: LabClient[];
  routerLan: { ipv4: string; ipv6: string; mac: string; bridge: string };
  /** The router's WAN side: the address IPv4 flows are NATed to. */
  routerWan: { ipv4: string; ipv6: string; iface: string };
  server: { ipv4: string; ipv6: string; tcpPort: number; udpPort: number; httpPort: number };
  names: DnsZone;
  leaseFile: string;
  /** State directory: pid files, logs, lease file. */
  dir: string;
  persistent: boolean;
  /** Stops the daemons and removes the namespaces (unless persistent). */
  close(): Promise<void>;
}

/** The id (namespace prefix) of a home network and whether it outlives this process. */
export interface HomeNetworkOptions {
  id?: string;
  /** Daemons outlive this process; tear down with `destroyHomeNetwork(id)`. */
  persistent?: boolean;
}

const ROUTER_LAN = { ipv4: '192.168.77.1', ipv6: 'fd77::1', mac: '02:00:00:00:77:01', bridge: 'br0' };
const ROUTER_WAN = { ipv4: '198.51.100.1', ipv6: '2001:db8:77::1', iface: 'wan0' };
const SERVER = { ipv4: '198.51.100.10', ipv6: '2001:db8:77::10', tcpPort: 7007, udpPort: 7007, httpPort: 8080 };
const CLIENTS = [
  { name: 'laptop', mac: '02:00:00:00:77:11', ipv4: '192.168.77.11', ipv6: 'fd77::11' },
  { name: 'phone', mac: '02:00:00:00:77:12', ipv4: '192.168.77.12', ipv6: 'fd77::12' },
  { name: 'tv', mac: '02:00:00:00:77:13', ipv4: '192.168.77.13', ipv6: 'fd77::13' },
];
const DOMAIN = 'lan';
/** Programs the home lab runs (Debian: iproute2 procps nftables dnsmasq-base socat dnsutils iputils-ping). */
export const HOME_TOOLS = ['ip', 'ss', 'sysctl', 'nft', 'dnsmasq', 'socat', 'dig', 'ping'];

function homeZone(): DnsZone {
  const hosts: DnsZone['hosts'] = {
    [`router.${DOMAIN}`]: { ipv4: ROUTER_LAN.ipv4, ipv6: ROUTER_LAN.ipv6 },
    'server.wan.test': { ipv4: SERVER.ipv4, ipv6: SERVER.ipv6 },
  };
  for (const c of CLIENTS) hosts[`${c.name}.${DOMAIN}`] = { ipv4: c.ipv4, ipv6: c.ipv6 };
  return { hosts, cnames: { 'www.shop.test': 'cdn.shop.test', 'cdn.shop.test': 'server.wan.test' }, ttl: 60 };
}

// Conntrack only runs in a namespace while a rule needs it: `ct state` in
// every filter hook makes routed, local and bridged (br_netfilter) traffic tracked.
const NFT_RULESET = `
table inet fglab {
  chain input { type filter hook input priority 0; policy accept; ct state new counter; }
  chain forward { type filter hook forward priority 0; policy accept; ct state new counter; }
  chain output { type filter hook output priority 0; policy accept; ct state new counter; }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 oifname "${ROUTER_WAN.iface}" masquerade
  }
}
`;

// Set before any interface exists, so every interface inherits it. Without
// it link-local addresses stay tentative for 1-2 s, and until then the kernel
// sends no neighbour solicitation for *forwarded* IPv6 packets (ndisc_send_ns
// needs a usable link-local source): routed IPv6 is silently dropped. `nodad`
// on the global addresses alone is not enough.
const NO_DAD = { 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 };

const ROUTER_SYSCTLS = {
  'net.ipv4.ip_forward': 1,
  'net.ipv6.conf.all.forwarding': 1,
  // Counters and timestamps exist only on flows created after these are on.
  'net.netfilter.nf_conntrack_acct': 1,
  'net.netfilter.nf_conntrack_timestamp': 1,
  // 2 ("auto") would give flows created with no listener no events, ever.
  'net.netfilter.nf_conntrack_events': 1,
  'net.netfilter.nf_conntrack_udp_timeout': 60,
  'net.netfilter.nf_conntrack_udp_timeout_stream': 180,
};

function routerLines(): string[] {
  const lines = [`link set ${ROUTER_LAN.bridge} up`, `link set ${ROUTER_WAN.iface} up`];
  for (let i = 1; i <= CLIENTS.length; i++)
    lines.push(`link set lan${i} master ${ROUTER_LAN.bridge}`, `link set lan${i} up`);
  lines.push(
    `addr add ${ROUTER_LAN.ipv4}/24 dev ${ROUTER_LAN.bridge}`,
    // nodad: usable at once (dnsmasq binds it right away), no 1-2 s duplicate address detection.
    `addr add ${ROUTER_LAN.ipv6}/64 dev ${ROUTER_LAN.bridge} nodad`,
    `addr add ${ROUTER_WAN.ipv4}/24 dev ${ROUTER_WAN.iface}`,
    `addr add ${ROUTER_WAN.ipv6}/64 dev ${ROUTER_WAN.iface} nodad`,
  );
  return lines;
}

function wanLines(): string[] {
  return [
    'link set eth0 up',
    `addr add ${SERVER.ipv4}/24 dev eth0`,
    `addr add ${SERVER.ipv6}/64 dev eth0 nodad`,
    // IPv6 is routed, not NATed: the WAN must know the way back to the LAN prefix.
    `route add fd77::/64 via ${ROUTER_WAN.ipv6}`,
  ];
}

function clientLines(c: (typeof CLIENTS)[number]): string[] {
  return [
    'link set eth0 up',
    `addr add ${c.ipv4}/24 dev eth0`,
    `addr add ${c.ipv6}/64 dev eth0 nodad`,
    `route add default via ${ROUTER_LAN.ipv4}`,
    `route add default via ${ROUTER_LAN.ipv6}`,
  ];
}

/** Builds the home network; on any failure everything made so far is removed before the error is rethrown. */
export async function createHomeNetwork(opts: HomeNetworkOptions = {}): Promise<HomeNetwork> {
  const missing = missingTools(HOME_TOOLS);
  if (missing.length > 0) {
    const msg = `the lab needs programs not found on PATH: ${missing.join(', ')}`;
    throw new FlowgrabError('FG_ERR_INVALID_STATE', msg, { op: 'lab.create' });
  }
  await sweepStaleLabs();
  const lab = new Lab({ id: opts.id, persistent: opts.persistent });
  try {
    const makeNs = async (suffix: string) => {
      const ns = await lab.netns(suffix);
      await ns.sysctls(NO_DAD);
      return ns;
    };
    const [router, wan, ...clientNs] = await Promise.all([
      makeNs('router'),
      makeNs('wan'),
      ...CLIENTS.map((_, i) => makeNs(`c${i + 1}`)),
    ]);
    await Promise.all([
      router.ip(['link', 'add', ROUTER_LAN.bridge, 'address', ROUTER_LAN.mac, 'type', 'bridge']),
      lab.veth(router, ROUTER_WAN.iface, wan, 'eth0'),
      ...CLIENTS.map((c, i) => lab.veth(router, `lan${i + 1}`, clientNs[i], 'eth0', { macB: c.mac })),
    ]);
    await Promise.all([
      router.ipBatch(routerLines()),
      router.sysctls(ROUTER_SYSCTLS),
      router.exec(['nft', '-f', '-'], { input: NFT_RULESET }),
      wan.ipBatch(wanLines()),
      ...CLIENTS.map((c, i) => clientNs[i].ipBatch(clientLines(c))),
    ]);
    const made = new Map([router, wan, ...clientNs].map((ns) => [ns.name, ns]));
    const home = describeHome(lab.id, lab.dir, lab.persistent, () => lab.close(), made);
    const listen = [ROUTER_LAN.ipv4, ROUTER_LAN.ipv6];
    const argv = dnsmasqArgv({
      zone: home.names,
      listen,
      domain: DOMAIN,
      dhcpRange: { from: '192.168.77.100', to: '192.168.77.199', netmask: '255.255.255.0' },
      dhcpHosts: CLIENTS,
      leaseFile: home.leaseFile,
      pidFile: join(lab.dir, 'dnsmasq.pid'),
      logFile: join(lab.dir, 'dnsmasq-queries.log'),
    });
    await Promise.all([startDnsmasq(lab, router, argv, listen), startWanServers(lab, wan, SERVER)]);
    return home;
  } catch (err) {
    await lab.close().catch(() => {});
    throw err;
  }
}

/** The HomeNetwork object for lab `id`: every name and address follows from the id. */
function describeHome(
  id: string,
  dir: string,
  persistent: boolean,
  close: () => Promise<void>,
  made = new Map<string, Netns>(),
): HomeNetwork {
  // Reuse the Lab's Netns objects when we have them: they track the processes started in them.
  const ns = (suffix: string) => made.get(`${id}-${suffix}`) ?? new Netns(`${id}-${suffix}`);
  return {
    id,
    router: ns('router'),
    wan: ns('wan'),
    clients: CLIENTS.map((c, i) => ({ ...c, fqdn: `${c.name}.${DOMAIN}`, ns: ns(`c${i + 1}`) })),
    routerLan: { ...ROUTER_LAN },
    routerWan: { ...ROUTER_WAN },
    server: { ...SERVER },
    names: homeZone(),
    leaseFile: join(dir, 'dnsmasq.leases'),
    dir,
    persistent,
    close,
  };
}

/** A handle on a persistent home network made by another process (the CLI's `up`). */
export async function attachHomeNetwork(id: string): Promise<HomeNetwork> {
  const owner = readOwner(id);
  const namespaces = await labNamespaces(id);
  const missing = ['router', 'wan', ...CLIENTS.map((_, i) => `c${i + 1}`)].filter(
    (s) => !namespaces.includes(`${id}-${s}`),
  );
  if (!owner || missing.length > 0) {
    const why = owner ? `namespaces missing: ${missing.map((s) => `${id}-${s}`).join(', ')}` : 'no lab state';
    throw new FlowgrabError('FG_ERR_INVALID_STATE', `home network ${id} is not up (${why})`, { op: 'lab.attach' });
  }
  return describeHome(id, labDir(id), owner.persistent, async () => {
    await destroyHomeNetwork(id);
  });
}

/** Tears down a home network from its state in /run/flowgrab-lab/ID alone (pids, namespaces, directory). */
export function destroyHomeNetwork(id: string): Promise<DestroyResult> {
  return destroyLab(id);
}
