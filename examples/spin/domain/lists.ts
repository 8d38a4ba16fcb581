/**
 * SPIN's three lists (block, allow, ignore). Entries are addresses, prefixes
 * (`192.0.2.0/24`, kept as prefixes: spind silently cut them to one address)
 * and, beyond spind, DNS names: a name entry covers every address the name
 * (or a name below it) resolves to while its DNS answer is valid.
 */
import { canonicalDomain, domainKey, labelEnd, type Prefix, parsePrefix, prefixContains } from './ip.js';

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
  private readonly prefixes: Prefix[] = [];

  constructor(readonly name: ListName) {}

  add(e: ListEntry): boolean {
    const k = e.kind === 'domain' ? e.key : e.text;
    if (this.entries.has(k)) return false;
    this.entries.set(k, e);
    this.reindex();
    return true;
  }

  remove(e: ListEntry): boolean {
    const ok = this.entries.delete(e.kind === 'domain' ? e.key : e.text);
    if (ok) this.reindex();
    return ok;
  }

  clear(): void {
    this.entries.clear();
    this.reindex();
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
    for (const p of this.prefixes) if (prefixContains(p, ip)) return true;
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

  private reindex(): void {
    this.exact.clear();
    this.prefixes.length = 0;
    for (const e of this.entries.values()) {
      if (e.kind !== 'ip') continue;
      const full = e.prefix.len === (e.prefix.family === 4 ? 32 : 128);
      if (full) this.exact.add(e.text);
      else this.prefixes.push(e.prefix);
    }
  }
}
