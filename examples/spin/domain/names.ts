/**
 * Device names: user names (set_device_name, kept in the store; and a names
 * file in spind's `names.conf` form, `name: <ip-or-mac> <name…>`) take
 * precedence over DHCP names from a dnsmasq lease file
 * (`<expiry> <mac> <ip> <name> <client-id>`, name `*` = none).
 */
import { canonicalIp } from './ip.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC or an address as a name key; undefined when it is neither. */
export function nameKey(token: string): string | undefined {
  const t = token.toLowerCase();
  if (t.length === 17 && MAC.test(t)) return t;
  return canonicalIp(token);
}

export function parseNamesFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*name:\s*(\S+)\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const key = nameKey(m[1]);
    if (key) out.set(key, m[2].slice(0, 128));
  }
  return out;
}

export function parseLeases(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] === '*') continue;
    const mac = nameKey(f[1]);
    const ip = canonicalIp(f[2]);
    if (mac) out.set(mac, f[3]);
    if (ip) out.set(ip, f[3]);
  }
  return out;
}

/** A name source read when asked (the names file, the lease file: io/watched-file.ts re-reads them when changed). */
export type NameSource = () => ReadonlyMap<string, string>;

export class DeviceNames {
  /**
   * @param user names set by the user (set_device_name), from the store
   * @param files further sources in precedence order: the names file, then DHCP leases
   */
  constructor(
    private readonly user: Map<string, string>,
    private readonly files: readonly NameSource[] = [],
  ) {}

  /** By MAC when known, else by each address; user names before DHCP names. */
  lookup(mac: string | undefined, ips: Iterable<string>): string | undefined {
    const keys = mac ? [mac] : [...ips];
    for (const src of [this.user, ...this.files.map((f) => f())])
      for (const k of keys) {
        const n = src.get(k);
        if (n) return n;
      }
    return undefined;
  }

  setUser(key: string, name: string): void {
    this.user.set(key, name);
  }
}
