/**
 * The kernel's neighbour table for one address, as spind asks `ip neigh`
 * when it creates a node: used before a new MAC-less node's first nodeInfo
 * (announce.ts). Only addresses on the router's own subnets are asked about
 * (others cannot be neighbours), so internet peers cost nothing; the
 * router's subnets are re-read every 10 s. Questions asked together share
 * one `ip neigh` run (one reads the whole table), one run at a time: a host
 * using 200 addresses of its /64 started 200 processes at once.
 */
import { runTool } from 'flowgrab';
import type { MacLookup } from '../domain/announce.js';
import type { MonitorScope } from '../domain/ingest-host.js';
import { canonicalIp, type Prefix, parsePrefix, prefixContains } from '../domain/ip.js';

export type { MonitorScope } from '../domain/ingest-host.js';

const REFRESH_MS = 10_000;
/** The longest one question to the kernel may take (a new node's messages wait for it). */
const LOOKUP_MS = 1000;
/** NUD states in which the entry holds no usable MAC. */
const UNUSABLE = new Set(['FAILED', 'INCOMPLETE', 'NOARP']);

interface AddrJson {
  addr_info?: { local?: string; prefixlen?: number }[];
}
export interface NeighJson {
  dst?: string;
  lladdr?: string;
  state?: string[];
}
/** Addresses waiting for the next read of the table; past it, a question is answered "unknown" at once. */
const MAX_WAITING = 4096;

/** undefined: everything is monitored. */
export async function monitorScope(
  prefixes: string[] = [],
  interfaces: string[] = [],
  netns?: string,
): Promise<MonitorScope | undefined> {
  if (prefixes.length === 0 && interfaces.length === 0) return undefined;
  const out: Prefix[] = [];
  for (const text of prefixes) {
    const p = parsePrefix(text);
    if (!p) throw new Error(`monitor: not a prefix: ${JSON.stringify(text)}`);
    out.push(p);
  }
  for (const dev of interfaces) {
    if (!/^[\w.@:-]{1,15}$/.test(dev)) throw new Error(`monitor: not an interface name: ${JSON.stringify(dev)}`);
    const r = await runTool(['ip', '-j', 'addr', 'show', 'dev', dev], { netns, allowFail: true });
    if (r.code !== 0) throw new Error(`monitor: no interface ${dev}${netns ? ` in ${netns}` : ''}`);
    out.push(...subnetsOf(r.stdout).filter((p) => !prefixContains(LINK_LOCAL, p.text.split('/')[0])));
  }
  return { prefixes: out, interfaces };
}

const LINK_LOCAL = parsePrefix('fe80::/10')!;

function subnetsOf(json: string): Prefix[] {
  return (JSON.parse(json) as AddrJson[]).flatMap((l) =>
    (l.addr_info ?? []).flatMap((a) => {
      const p = a.local && a.prefixlen !== undefined ? parsePrefix(`${a.local}/${a.prefixlen}`) : undefined;
      return p && p.len > 0 ? [p] : [];
    }),
  );
}

export function kernelMacLookup(netns?: string): MacLookup {
  const ask = neighbourAsker(() => readNeighbours(netns));
  let subnets: Prefix[] = [];
  let readAt = -Infinity;
  let reading: Promise<void> | undefined;
  const refresh = async () => {
    const r = await runTool(['ip', '-j', 'addr', 'show'], { netns, allowFail: true });
    if (r.code !== 0) return;
    subnets = subnetsOf(r.stdout);
  };
  return async (ip) => {
    if (Date.now() - readAt > REFRESH_MS) {
      reading ??= refresh()
        .catch(() => {})
        .finally(() => {
          reading = undefined;
          readAt = Date.now();
        });
      await reading;
    }
    if (!subnets.some((p) => prefixContains(p, ip))) return undefined;
    // INCOMPLETE: the router is resolving it right now (it answers the packet that made the node); ask again shortly.
    for (let attempt = 0; attempt < 5; attempt++) {
      const answer = await ask(ip);
      if (answer !== 'pending') return answer;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  };
}

type Answer = string | undefined | 'pending';

/**
 * Answers questions about addresses from reads of the whole neighbour table: every question asked while a
 * read runs is answered by the next one.
 */
export function neighbourAsker(read: () => Promise<NeighJson[] | undefined>): (ip: string) => Promise<Answer> {
  let waiting = new Map<string, ((a: Answer) => void)[]>();
  let running = false;
  const run = async () => {
    running = true;
    try {
      while (waiting.size > 0) {
        const batch = waiting;
        waiting = new Map();
        const table = await read().catch(() => undefined);
        const byIp = table ? tableByIp(table) : undefined;
        for (const [ip, answer] of batch) {
          const entries = byIp?.get(ip);
          const a = entries ? answerFrom(entries) : undefined;
          for (const f of answer) f(a);
        }
      }
    } finally {
      running = false;
    }
  };
  return (ip) =>
    new Promise<Answer>((resolve) => {
      const key = canonicalIp(ip) ?? ip;
      const same = waiting.get(key);
      if (same) same.push(resolve);
      else if (waiting.size >= MAX_WAITING) resolve(undefined);
      else waiting.set(key, [resolve]);
      if (!running) void run();
    });
}

/** The table's entries by address (canonical). */
function tableByIp(table: NeighJson[]): Map<string, NeighJson[]> {
  const by = new Map<string, NeighJson[]>();
  for (const e of table) {
    const ip = e.dst ? canonicalIp(e.dst) : undefined;
    if (!ip) continue;
    const list = by.get(ip);
    if (list) list.push(e);
    else by.set(ip, [e]);
  }
  return by;
}

/** What an address's entries say: its MAC, 'pending' while the kernel resolves it, else undefined. */
function answerFrom(entries: NeighJson[]): Answer {
  let pending = false;
  for (const e of entries) {
    const states = e.state ?? [];
    if (e.lladdr && !states.some((s) => UNUSABLE.has(s))) return e.lladdr.toLowerCase();
    if (states.includes('INCOMPLETE')) pending = true;
  }
  return pending ? 'pending' : undefined;
}

/** The whole neighbour table of the namespace, or undefined when `ip` fails or takes over LOOKUP_MS. */
async function readNeighbours(netns: string | undefined): Promise<NeighJson[] | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), LOOKUP_MS);
  });
  const r = await Promise.race([runTool(['ip', '-j', 'neigh', 'show'], { netns, allowFail: true }), late]);
  clearTimeout(timer);
  if (!r || r.code !== 0 || !r.stdout.trim()) return undefined;
  return JSON.parse(r.stdout) as NeighJson[];
}
