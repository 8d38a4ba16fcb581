/**
 * The lab's DNS zone, as data, and the dnsmasq command line serving it. Tests
 * compare what they resolve with this data instead of repeating literals.
 */
export interface DnsZone {
  /** Name → addresses (dnsmasq `--host-record`: A and AAAA). */
  hosts: Record<string, { ipv4: string; ipv6?: string }>;
  /** Alias → target, one CNAME link each (dnsmasq `--cname`). */
  cnames: Record<string, string>;
  /** TTL of every local record (dnsmasq's default would be 0). */
  ttl: number;
}

/** What a name resolves to in the lab zone (addresses and the CNAME chain). */
export interface Resolved {
  /** The queried name, then each CNAME target in order. */
  chain: string[];
  ipv4?: string;
  ipv6?: string;
}

const MAX_CHAIN = 16;

/** Follows CNAMEs in the zone data (what a resolver should answer), with a loop guard. */
export function resolveInZone(zone: DnsZone, name: string): Resolved {
  const chain = [name];
  let current = name;
  while (zone.cnames[current] !== undefined && chain.length < MAX_CHAIN) {
    current = zone.cnames[current];
    chain.push(current);
  }
  const host = zone.hosts[current];
  return { chain, ...(host?.ipv4 ? { ipv4: host.ipv4 } : {}), ...(host?.ipv6 ? { ipv6: host.ipv6 } : {}) };
}

export interface DhcpHost {
  mac: string;
  name: string;
  ipv4: string;
}

/** The lab router's dnsmasq: addresses, DHCP range, zone, lease file. */
export interface DnsmasqConfig {
  zone: DnsZone;
  /** Addresses to serve DNS on (bound with --bind-interfaces, so they must already exist). */
  listen: string[];
  domain: string;
  dhcpRange: { from: string; to: string; netmask: string };
  dhcpHosts: DhcpHost[];
  leaseFile: string;
  pidFile: string;
  logFile: string;
}

/** The argv for a foreground dnsmasq that reads no file of the host (/etc/hosts, resolv.conf, dnsmasq.conf). */
export function dnsmasqArgv(cfg: DnsmasqConfig): string[] {
  const argv = [
    'dnsmasq',
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    // Stay root: the lease, pid and log files live in a root-owned lab directory.
    '--user=root',
    '--group=root',
    ...cfg.listen.map((a) => `--listen-address=${a}`),
    `--local-ttl=${cfg.zone.ttl}`,
    `--domain=${cfg.domain}`,
    `--local=/${cfg.domain}/`,
    // Authoritative for the lab's own test domain: unknown names get NXDOMAIN, not REFUSED.
    '--local=/test/',
    `--dhcp-range=${cfg.dhcpRange.from},${cfg.dhcpRange.to},${cfg.dhcpRange.netmask},12h`,
    '--dhcp-authoritative',
    `--dhcp-leasefile=${cfg.leaseFile}`,
    `--pid-file=${cfg.pidFile}`,
    `--log-facility=${cfg.logFile}`,
    '--log-queries',
  ];
  for (const h of cfg.dhcpHosts) argv.push(`--dhcp-host=${h.mac},${h.name},${h.ipv4}`);
  for (const [name, a] of Object.entries(cfg.zone.hosts)) {
    argv.push(`--host-record=${[name, a.ipv4, a.ipv6].filter(Boolean).join(',')}`);
  }
  // A --cname target must be a --host-record (or another --cname): dnsmasq
  // then answers the whole chain, ending in the A/AAAA records.
  for (const [alias, target] of Object.entries(cfg.zone.cnames)) argv.push(`--cname=${alias},${target}`);
  return argv;
}
