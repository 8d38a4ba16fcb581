/**
 * SPIN's three lists (block, allow, ignore). Entries are addresses, prefixes
 * (`192.0.2.0/24`, kept as prefixes: spind silently cut them to one address)
 * and, beyond spind, DNS names: a name entry covers every address the name
 * (or a name below it) resolves to while its DNS answer is valid.
 */
import {
  canonicalDomain,
  domainKey,
  ipBytes,
  ipFamilyOf,
  labelEnd,
  maskBytes,
  type Prefix,
  parsePrefix,
} from './ip.js';

export const LIST_NAMES = ['block', 'ignore', 'allow'] as const;
export type ListName = (typeof LIST_NAMES)[number];

/**
 * spind's list-name match: a prefix compare of the caller's string against
 * the name, in the order block, ignore, allow (so `""` and `"b"` mean block).
 */
export function matchListName(text: string): ListName | undefined {
  return LIST_NAMES.find((n) => n.startsWith(text));
}

export type ListEntry = { kind: 'ip'; prefix: Prefix; text: string } | { kind: 'domain'; text: string; key: string };

/** An address, a prefix or (with `domains`) a DNS name; undefined when it is none of these. */
export function parseEntry(text: string, domains = true): ListEntry | undefined {
  const p = parsePrefix(text.trim());
  if (p) return { kind: 'ip', prefix: p, text: p.text };
  if (!domains) return undefined;
  const d = canonicalDomain(text.trim());
  return d ? { kind: 'domain', text: d, key: domainKey(d) } : undefined;
}

export class IpList {
  private readonly entries = new Map<string, ListEntry>();
  /** Exact addresses, for the per-record check. */
  private readonly exact = new Set<string>();
  /**
   * The other prefixes by family and length, as their bytes in hex: an address is looked up once per length
   * listed, not compared with every prefix (twice per conntrack record, with up to 10 000 entries).
   */
  private readonly byLength = new Map<string, { family: 4 | 6; len: number; keys: Set<string> }>();

  constructor(readonly name: ListName) {}

  add(e: ListEntry): boolean {
    const k = e.kind === 'domain' ? e.key : e.text;
    if (this.entries.has(k)) return false;
    this.entries.set(k, e);
    if (e.kind === 'ip') this.index(e.prefix, true);
    return true;
  }

  remove(e: ListEntry): boolean {
    const k = e.kind === 'domain' ? e.key : e.text;
    const had = this.entries.get(k);
    if (!had) return false;
    this.entries.delete(k);
    if (had.kind === 'ip') this.index(had.prefix, false);
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.exact.clear();
    this.byLength.clear();
  }

  has(e: ListEntry): boolean {
    return this.entries.has(e.kind === 'domain' ? e.key : e.text);
  }

  /** Entry texts as list_iplist returns them. */
  texts(): string[] {
    return [...this.entries.values()].map((e) => e.text);
  }

  all(): ListEntry[] {
    return [...this.entries.values()];
  }

  ipEntries(): Prefix[] {
    return [...this.entries.values()].flatMap((e) => (e.kind === 'ip' ? [e.prefix] : []));
  }

  domainKeys(): string[] {
    return [...this.entries.values()].flatMap((e) => (e.kind === 'domain' ? [e.key] : []));
  }

  get size(): number {
    return this.entries.size;
  }

  /** True when `ip` is on the list as an address or inside a listed prefix. */
  containsIp(ip: string): boolean {
    if (this.exact.has(ip)) return true;
    if (this.byLength.size === 0) return false;
    const family = ipFamilyOf(ip);
    if (family === undefined) return false;
    const bytes = ipBytes(ip);
    for (const g of this.byLength.values()) {
      if (g.family !== family) continue;
      const b = Buffer.from(bytes);
      maskBytes(b, g.len);
      if (g.keys.has(b.toString('hex'))) return true;
    }
    return false;
  }

  /** True when any of the addresses is on the list (containsIp). */
  containsAnyIp(ips: Iterable<string>): boolean {
    if (this.entries.size === 0) return false;
    for (const ip of ips) if (this.containsIp(ip)) return true;
    return false;
  }

  /** True when a name, or a name it belongs under, is on the list. */
  containsDomain(name: string): boolean {
    if (this.entries.size === 0) return false;
    let k = domainKey(name);
    for (;;) {
      const e = this.entries.get(k);
      if (e?.kind === 'domain') return true;
      const dot = labelEnd(k);
      if (dot < 0 || dot === k.length - 1) return false;
      k = k.slice(dot + 1);
    }
  }

  /** Adds a prefix to the lookup tables, or takes it out. */
  private index(p: Prefix, add: boolean): void {
    if (p.len === (p.family === 4 ? 32 : 128)) {
      if (add) this.exact.add(p.text);
      else this.exact.delete(p.text);
      return;
    }
    const at = `${p.family}/${p.len}`;
    let g = this.byLength.get(at);
    if (!g && !add) return;
    if (!g) this.byLength.set(at, (g = { family: p.family, len: p.len, keys: new Set() }));
    if (add) g.keys.add(p.bytes.toString('hex'));
    else if (g.keys.delete(p.bytes.toString('hex')) && g.keys.size === 0) this.byLength.delete(at);
  }
}
