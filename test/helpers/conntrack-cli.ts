/**
 * The kernel's own view of a conntrack table, through conntrack-tools:
 * `conntrack -L -o extended,id` parsed line by line, so integration tests
 * compare flowgrab's records with what `conntrack` prints.
 */
import { type Lab, type Netns, type RunResult, run } from '../../src/testing/lab/index.js';

export interface KernelCtEnd {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  icmp?: { type: number; code: number; id: number };
  packets?: number;
  bytes?: number;
}

export interface KernelCtEntry {
  /** From `-o extended`; undefined when the listing had no family column. */
  family?: 'ipv4' | 'ipv6';
  proto: string;
  protonum: number;
  /** Seconds left. */
  timeout: number;
  /** TCP state (ESTABLISHED, TIME_WAIT …). */
  state?: string;
  orig: KernelCtEnd;
  reply: KernelCtEnd;
  /** Bracketed flags: UNREPLIED, ASSURED, OFFLOAD … */
  flags: string[];
  mark?: number;
  zone?: number;
  /** The kernel's entry id (`-o id`); -1 when the text had none. */
  id: number;
  line: string;
}

const END_KEYS = new Set(['src', 'dst', 'sport', 'dport', 'type', 'code', 'packets', 'bytes']);

function parseLine(line: string, requireId: boolean): KernelCtEntry {
  const toks = line.trim().split(/\s+/);
  let i = 0;
  let family: KernelCtEntry['family'];
  if (toks[0] === 'ipv4' || toks[0] === 'ipv6') {
    family = toks[0];
    i = 2; // family name and number
  }
  const proto = toks[i++];
  const protonum = Number(toks[i++]);
  const timeout = Number(toks[i++]);
  let state: string | undefined;
  if (toks[i] !== undefined && !toks[i].includes('=') && !toks[i].startsWith('[')) state = toks[i++];
  const orig: Partial<KernelCtEnd> & Record<string, unknown> = {};
  const reply: Partial<KernelCtEnd> & Record<string, unknown> = {};
  let cur: typeof orig | undefined;
  let prevKey = '';
  const flags: string[] = [];
  let mark: number | undefined;
  let zone: number | undefined;
  let id: number | undefined;
  for (; i < toks.length; i++) {
    const t = toks[i];
    const flag = /^\[(.+)\]$/.exec(t);
    if (flag) {
      flags.push(flag[1]);
      continue;
    }
    const kv = /^([a-z-]+)=(.*)$/.exec(t);
    if (!kv) throw new Error(`conntrack -L: unexpected token ${JSON.stringify(t)} in ${JSON.stringify(line)}`);
    const [, k, v] = kv;
    if (k === 'src') cur = cur === undefined ? orig : reply;
    if (k === 'id' && prevKey === 'code' && cur) {
      // ICMP: type, code, id belong to the tuple; the entry's id comes last.
      (cur.icmp as { id: number }).id = Number(v);
    } else if (END_KEYS.has(k) && cur) {
      if (k === 'src' || k === 'dst') cur[k] = v;
      else if (k === 'type') cur.icmp = { type: Number(v), code: 0, id: 0 };
      else if (k === 'code') (cur.icmp as { code: number }).code = Number(v);
      else cur[k] = Number(v);
    } else if (k === 'mark') mark = Number(v);
    else if (k === 'zone') zone = Number(v);
    else if (k === 'id') id = Number(v);
    prevKey = k;
  }
  if (id === undefined && requireId) throw new Error(`conntrack -L: no id= (use -o id) in ${JSON.stringify(line)}`);
  if (orig.src === undefined || reply.src === undefined) throw new Error(`conntrack -L: no tuples in ${line}`);
  const e: KernelCtEntry = {
    proto,
    protonum,
    timeout,
    orig: orig as KernelCtEnd,
    reply: reply as KernelCtEnd,
    flags,
    id: id ?? -1,
    line,
  };
  if (family) e.family = family;
  if (state) e.state = state;
  if (mark !== undefined) e.mark = mark;
  if (zone !== undefined) e.zone = zone;
  return e;
}

/**
 * Parses `conntrack -L -o id` (optionally with `extended`) output; the summary
 * line goes to stderr and is ignored. `requireId: false` also reads lines
 * without `id=` (flowgrab's own text output).
 */
export function parseConntrackList(text: string, opts: { requireId?: boolean } = {}): KernelCtEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('conntrack v'))
    .map((l) => parseLine(l, opts.requireId ?? true));
}

/** `conntrack ARGS` inside network namespace `netns`. */
export function conntrackTool(netns: string, args: string[], allowFail = false): Promise<RunResult> {
  return run(['ip', 'netns', 'exec', netns, 'conntrack', ...args], { allowFail, timeoutMs: 20_000 });
}

/** The table of `netns` as conntrack-tools sees it (`conntrack -L -o extended,id`, plus `extra` filters). */
export async function kernelTable(netns: string, extra: string[] = []): Promise<KernelCtEntry[]> {
  const r = await conntrackTool(netns, ['-L', '-o', 'extended,id', ...extra], true);
  // conntrack -L exits 0 with a table, and 1 with "0 flow entries" on some versions when filtered to nothing.
  if (r.code !== 0 && !/0 flow entries have been shown/.test(r.stderr)) {
    throw new Error(`conntrack -L in ${netns} failed (${r.code}): ${r.stderr.trim()}`);
  }
  return parseConntrackList(r.stdout);
}

/** Just the ids, sorted. */
export async function kernelIds(netns: string, extra: string[] = []): Promise<number[]> {
  return (await kernelTable(netns, extra)).map((e) => e.id).sort((a, b) => a - b);
}

/** Protocol number and both tuples: what identifies an entry in any listing (no timeout, no counters). */
export function tupleKey(e: { protonum: number; orig: KernelCtEnd; reply: KernelCtEnd }): string {
  const end = (x: KernelCtEnd) =>
    x.icmp
      ? `${x.src}>${x.dst} icmp ${x.icmp.type}/${x.icmp.code}/${x.icmp.id}`
      : `${x.src}:${x.sport ?? '-'}>${x.dst}:${x.dport ?? '-'}`;
  return `${e.protonum} ${end(e.orig)} | ${end(e.reply)}`;
}

/** Counters of both directions, `undefined` when accounting was off for the entry. */
export function countersOf(e: { orig: KernelCtEnd; reply: KernelCtEnd }): string | undefined {
  if (e.orig.packets === undefined) return undefined;
  return `${e.orig.packets}/${e.orig.bytes} ${e.reply.packets}/${e.reply.bytes}`;
}

/** Minimal plain-netns setup: loopback up, conntrack hooked in (output and input), accounting, timestamps, events. */
export const CT_RULESET = `
table inet fgct {
  chain o { type filter hook output priority 0; policy accept; ct state new counter; }
  chain i { type filter hook input priority 0; policy accept; ct state new counter; }
}
`;

/** For event floods: every flow sends DESTROY, entries carry counters, unreplied UDP lives 300 s. */
export const FLOOD_SYSCTLS: Record<string, number> = {
  'net.netfilter.nf_conntrack_events': 1,
  'net.netfilter.nf_conntrack_acct': 1,
  'net.netfilter.nf_conntrack_udp_timeout': 300,
};

/**
 * A namespace of `lab` named after `name` whose conntrack sees every local flow (CT_RULESET), where unreplied
 * UDP lives 120 s (unless `sysctls` say otherwise): the flows one test makes must not expire and come back as
 * fresh ones in a later test.
 */
export async function conntrackNetns(lab: Lab, name: string, sysctls: Record<string, number> = {}): Promise<Netns> {
  const ns = await lab.netns(name);
  await ns.exec(['nft', '-f', '-'], { input: CT_RULESET });
  await ns.sysctls({ 'net.netfilter.nf_conntrack_udp_timeout': 120, ...sysctls });
  return ns;
}
