/**
 * Enforcement in the kernel: one nft table of the app's own (`inet
 * flowgrab_spin`, tagged with the owner process) holding sets for the block
 * and allow lists, the addresses of blocked and allowed DNS names (elements
 * that time out with the DNS answer's TTL), and blocked node pairs. The whole
 * table is replaced in one transaction whenever the lists change, so the
 * kernel never sees half a change, a restart after kill -9 swaps the stale
 * table for the current one, and nothing is ever duplicated.
 *
 * Dropped packets are counted per 5-tuple in a dynamic set with counters;
 * `drops()` reads the growth (the `blocked` messages).
 */
import { NftTable, runTool } from 'flowgrab';
import type { Enforcement } from '../domain/blocks.js';
import { ipFamilyOf, type Prefix } from '../domain/ip.js';
import type { Drop } from '../domain/traffic.js';

export type { Enforcement } from '../domain/blocks.js';
export type { Drop } from '../domain/traffic.js';

const PROTO_NUMBERS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132 };

function elements(items: string[]): string {
  return items.length === 0 ? '' : ` elements = { ${items.join(', ')} };`;
}

function timed(m: Map<string, number>, fam: 4 | 6, now: number): string[] {
  const out: string[] = [];
  for (const [ip, exp] of m) {
    const s = Math.ceil((exp - now) / 1000);
    if (s > 0 && ipFamilyOf(ip) === fam) out.push(`${ip} timeout ${s}s`);
  }
  return out;
}

/** The table body for a state (exported for unit tests). */
export function tableBody(e: Enforcement, now = Date.now()): string {
  const pre = (list: Prefix[], fam: 4 | 6) => list.filter((p) => p.family === fam).map((p) => p.text);
  const pairs = (fam: 4 | 6) => {
    const s = new Set<string>();
    for (const [a, b] of e.pairs) {
      if (ipFamilyOf(a) !== fam || ipFamilyOf(b) !== fam) continue;
      s.add(`${a} . ${b}`);
      s.add(`${b} . ${a}`);
    }
    return [...s];
  };
  const lines: string[] = [];
  for (const fam of [4, 6] as const) {
    const t = fam === 4 ? 'ipv4_addr' : 'ipv6_addr';
    lines.push(
      `  set block${fam} { type ${t}; flags interval; auto-merge;${elements(pre(e.block, fam))} }`,
      `  set allow${fam} { type ${t}; flags interval; auto-merge;${elements(pre(e.allow, fam))} }`,
      `  set bname${fam} { type ${t}; flags timeout;${elements(timed(e.blockNames, fam, now))} }`,
      `  set aname${fam} { type ${t}; flags timeout;${elements(timed(e.allowNames, fam, now))} }`,
      `  set pair${fam} { type ${t} . ${t};${elements(pairs(fam))} }`,
      `  set drops${fam} { type ${t} . ${t} . inet_proto . inet_service . inet_service; flags dynamic,timeout; timeout 60s; size 65536; counter; }`,
    );
  }
  for (const hook of ['input', 'forward', 'output'])
    lines.push(`  chain ${hook} { type filter hook ${hook} priority -5; policy accept; jump check; }`);
  const check: string[] = [];
  for (const [fam, ip] of [
    [4, 'ip'],
    [6, 'ip6'],
  ] as const) {
    for (const set of ['allow', 'aname'])
      check.push(`${ip} saddr @${set}${fam} return`, `${ip} daddr @${set}${fam} return`);
  }
  for (const [fam, ip] of [
    [4, 'ip'],
    [6, 'ip6'],
  ] as const) {
    for (const set of ['block', 'bname'])
      check.push(`${ip} saddr @${set}${fam} goto blocked`, `${ip} daddr @${set}${fam} goto blocked`);
    check.push(`${ip} saddr . ${ip} daddr @pair${fam} goto blocked`);
  }
  lines.push(`  chain check {\n${check.map((c) => `    ${c}`).join('\n')}\n  }`);
  lines.push(
    '  chain blocked {',
    '    meta nfproto ipv4 update @drops4 { ip saddr . ip daddr . meta l4proto . th sport . th dport }',
    '    meta nfproto ipv6 update @drops6 { ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport }',
    '    drop',
    '  }',
  );
  return lines.join('\n');
}

export class Firewall {
  private table: NftTable | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly dropSeen = new Map<string, { packets: number; bytes: number }>();
  private closed = false;
  /** An apply waiting its turn: later calls share it (it reads the state when it runs). */
  private queued: Promise<void> | undefined;
  /** Whole-table replacements made (each one nft transaction). */
  transactions = 0;
  /** Name-address updates made (each one nft transaction, however many addresses). */
  nameTransactions = 0;
  /** Name addresses waiting for the update queued (`set ip` → expiry), and that update. */
  private readonly pendingNames = new Map<string, number>();
  private namesQueued: Promise<void> | undefined;

  constructor(
    private readonly state: () => Enforcement,
    private readonly opts: { netns?: string; name?: string } = {},
  ) {}

  /**
   * Replaces the whole table with the current state, atomically; calls are
   * applied in order, and calls made while one waits its turn share it.
   */
  apply(): Promise<void> {
    if (this.queued) return this.queued;
    const run = this.serial(async () => {
      this.queued = undefined;
      if (this.closed) return;
      this.transactions++;
      this.table = await NftTable.install({
        family: 'inet',
        name: this.opts.name ?? 'spin',
        body: tableBody(this.state()),
        netns: this.opts.netns,
      });
    });
    this.queued = run;
    return run;
  }

  /**
   * Adds (or extends) the address of a listed DNS name until `expires`. Addresses that come while one update
   * waits its turn join it: one nft transaction for all of them (a DNS answer may list 256 addresses, and one
   * nft run each took 12 s of serialised work).
   */
  nameAddress(list: 'block' | 'allow', ip: string, expires: number): Promise<void> {
    const fam = ipFamilyOf(ip);
    if (!fam) return Promise.resolve();
    const set = `${list === 'block' ? 'bname' : 'aname'}${fam}`;
    const key = `${set} ${ip}`;
    this.pendingNames.set(key, Math.max(expires, this.pendingNames.get(key) ?? 0));
    if (this.namesQueued) return this.namesQueued;
    const run = this.serial(async () => {
      this.namesQueued = undefined;
      const names = [...this.pendingNames];
      this.pendingNames.clear();
      if (!this.table || this.closed || names.length === 0) return;
      const now = Date.now();
      // add-delete-add in one transaction: each element exists afterwards with its new timeout, whether it
      // existed or not.
      const script = names.flatMap(([k, exp]) => {
        const [s, addr] = k.split(' ');
        const secs = Math.max(1, Math.ceil((exp - now) / 1000));
        return [
          `add element {T} ${s} { ${addr} }`,
          `delete element {T} ${s} { ${addr} }`,
          `add element {T} ${s} { ${addr} timeout ${secs}s }`,
        ];
      });
      this.nameTransactions++;
      await this.table.apply(`${script.join('\n')}\n`);
    });
    this.namesQueued = run;
    return run;
  }

  /** Growth of the drop counters since the last call, per 5-tuple. */
  async drops(): Promise<Drop[]> {
    if (!this.table || this.closed) return [];
    const t = this.table;
    const r = await runTool(['nft', '-j', 'list', 'set', 'inet', t.name, 'drops4'], {
      netns: this.opts.netns,
      allowFail: true,
    });
    const r6 = await runTool(['nft', '-j', 'list', 'set', 'inet', t.name, 'drops6'], {
      netns: this.opts.netns,
      allowFail: true,
    });
    const out: Drop[] = [];
    const live = new Set<string>();
    for (const [fam, res] of [
      [4, r],
      [6, r6],
    ] as const) {
      if (res.code !== 0) continue;
      for (const el of parseDropSet(res.stdout)) {
        const key = `${fam}|${el.concat.join('|')}`;
        live.add(key);
        const prev = this.dropSeen.get(key) ?? { packets: 0, bytes: 0 };
        this.dropSeen.set(key, { packets: el.packets, bytes: el.bytes });
        const dp = el.packets - prev.packets;
        if (dp <= 0) continue;
        const [src, dst, proto, sport, dport] = el.concat;
        out.push({
          family: fam,
          src: String(src),
          dst: String(dst),
          proto: typeof proto === 'number' ? proto : (PROTO_NUMBERS[String(proto)] ?? Number(proto) ?? 0),
          sport: Number(sport),
          dport: Number(dport),
          packets: dp,
          bytes: el.bytes - prev.bytes,
        });
      }
    }
    for (const k of this.dropSeen.keys()) if (!live.has(k)) this.dropSeen.delete(k);
    return out;
  }

  /** Removes the table (a clean stop leaves no rules). */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain.catch(() => {});
    await this.table?.remove();
    this.table = undefined;
  }

  get installed(): boolean {
    return this.table !== undefined;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }
}

interface DropElement {
  concat: (string | number)[];
  packets: number;
  bytes: number;
}

function parseDropSet(json: string): DropElement[] {
  try {
    const doc = JSON.parse(json) as { nftables: { set?: { elem?: unknown[] } }[] };
    const set = doc.nftables.find((x) => x.set)?.set;
    const out: DropElement[] = [];
    for (const e of set?.elem ?? []) {
      const el = (
        e as { elem?: { val?: { concat?: (string | number)[] }; counter?: { packets: number; bytes: number } } }
      ).elem;
      if (!el?.val?.concat || !el.counter) continue;
      out.push({ concat: el.val.concat, packets: el.counter.packets, bytes: el.counter.bytes });
    }
    return out;
  } catch {
    return [];
  }
}
