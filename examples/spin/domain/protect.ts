/**
 * Blocks that would cut the router itself. Blocks apply on input and output
 * too, so blocking loopback, one of the router's own addresses, or a prefix
 * that wide cuts LAN DNS, this app's HTTP and MQTT, and (persisted) comes
 * back after a restart. Such blocks are refused unless the caller forces
 * them; addresses a blocked *name* resolves to are never the router's.
 */
import { ipFamilyOf, type Prefix, parsePrefix, prefixContains } from './ip.js';

/** Shortest prefixes accepted in the block list without `force` (an IPv4 /8, an ISP's IPv6 /32). */
export const MIN_BLOCK_PREFIX = { 4: 8, 6: 32 } as const;

const LOOPBACK = [parsePrefix('127.0.0.0/8')!, parsePrefix('::1')!];
/** How long the router's address list is trusted before it is read again. */
const REFRESH_MS = 10_000;

export class RouterGuard {
  private own: string[] = [];
  private readAt = -Infinity;
  private readonly warned = new Set<string>();

  constructor(
    private readonly read: () => Promise<string[]>,
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** A blocked name resolving to the router (or loopback): that address stays unblocked, with a warning once. */
  spareForName(ip: string, name: string): boolean {
    if (!this.isProtectedIp(ip)) return false;
    const key = `${name} ${ip}`;
    if (!this.warned.has(key) && this.warned.size < 10_000) {
      this.warned.add(key);
      this.log(
        `warning: blocked name ${name} resolves to ${ip}, the router's own address; that address is not blocked`,
      );
    }
    return true;
  }

  /** Reads the router's addresses again when the copy is older than 10 s. */
  async refresh(force = false): Promise<void> {
    if (!force && this.now() - this.readAt < REFRESH_MS) return;
    try {
      this.own = (await this.read()).filter((a) => ipFamilyOf(a) !== undefined);
    } finally {
      this.readAt = this.now();
    }
  }

  /** True for loopback and the router's own addresses (never in a name's block set). */
  isProtectedIp(ip: string): boolean {
    return LOOPBACK.some((p) => prefixContains(p, ip)) || this.own.includes(ip);
  }

  /** Why blocking this prefix would cut the router, or undefined when it would not. */
  reason(p: Prefix): string | undefined {
    if (p.len < MIN_BLOCK_PREFIX[p.family])
      return `${p.text} is wider than /${MIN_BLOCK_PREFIX[p.family]} and would cut the router`;
    const network = parsePrefix(p.text.split('/')[0])!.text;
    for (const lo of LOOPBACK)
      if (prefixContains(lo, network) || prefixContains(p, lo.text.split('/')[0])) return `${p.text} covers loopback`;
    const own = this.own.find((a) => prefixContains(p, a));
    if (own) return `${p.text} covers the router's own address ${own}`;
    return undefined;
  }
}
