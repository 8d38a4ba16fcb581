/**
 * Device names: user names (set_device_name, kept in the store; and a names
 * file in spind's `names.conf` form, `name: <ip-or-mac> <name…>`) take
 * precedence over DHCP names from a dnsmasq lease file
 * (`<expiry> <mac> <ip> <name> <client-id>`, name `*` = none).
 */
import { readFileSync, statSync } from 'node:fs';
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

/** Reads a file again only when it changed (mtime and size); a missing file is empty. */
class WatchedFile {
  private stamp = '';
  private data = new Map<string, string>();
  constructor(
    private readonly path: string | undefined,
    private readonly parse: (text: string) => Map<string, string>,
  ) {}
  get(): Map<string, string> {
    if (!this.path) return this.data;
    try {
      const st = statSync(this.path);
      const stamp = `${st.mtimeMs}|${st.size}`;
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        this.data = this.parse(readFileSync(this.path, 'utf8'));
      }
    } catch {
      this.stamp = '';
      this.data = new Map();
    }
    return this.data;
  }
}

export class DeviceNames {
  private readonly namesFile: WatchedFile;
  private readonly leases: WatchedFile;

  constructor(
    private readonly user: Map<string, string>,
    opts: { namesFile?: string; leaseFile?: string },
  ) {
    this.namesFile = new WatchedFile(opts.namesFile, parseNamesFile);
    this.leases = new WatchedFile(opts.leaseFile, parseLeases);
  }

  /** By MAC when known, else by each address; user names before DHCP names. */
  lookup(mac: string | undefined, ips: Iterable<string>): string | undefined {
    const keys = mac ? [mac] : [...ips];
    for (const src of [this.user, this.namesFile.get(), this.leases.get()])
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
