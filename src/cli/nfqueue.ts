/** `flowgrab nfqueue`: print the packets queued to an NFQUEUE queue, accepting each once printed. */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { RemotePacket } from '../daemon/client.js';
import type { NfqueueRules } from '../sources/nfqueue/options.js';
import type { QueuedPacket } from '../sources/nfqueue/queued.js';
import type { PacketRecord } from '../sources/nfqueue/record.js';
import { sourcesTornDown } from '../sources/teardown.js';
import { printable } from '../util/printable.js';
import { positiveInt, seconds } from './args.js';
import { logLine, logNotice } from './output.js';
import { runStream } from './run.js';
import { daemonPath } from './watch.js';

const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

/** One line: id, hook, devices, addresses and ports (or ICMP type/code), length, mark, uid. */
export function formatPacket(r: PacketRecord): string {
  const dev = [
    r.indev !== undefined ? `in=${printable(r.indevName ?? String(r.indev))}` : '',
    r.outdev !== undefined ? `out=${printable(r.outdevName ?? String(r.outdev))}` : '',
  ].filter(Boolean);
  const parts = [`#${r.packetId}`, `q${r.queue}`, r.hook.padEnd(11), ...dev];
  if (r.ip) {
    const l4 = r.tcp ?? r.udp;
    const ep = (a: string, p?: number) => (p === undefined ? a : r.family === 'ipv6' ? `[${a}]:${p}` : `${a}:${p}`);
    parts.push(PROTO[r.ip.proto] ?? `proto=${r.ip.proto}`, `${ep(r.ip.src, l4?.sport)} → ${ep(r.ip.dst, l4?.dport)}`);
    if (r.icmp) parts.push(`type=${r.icmp.type} code=${r.icmp.code}`);
    if (r.tcp) parts.push(`flags=0x${r.tcp.flags.toString(16).padStart(2, '0')}`);
    if (r.ip.fragment) parts.push('(fragment)');
  } else parts.push(r.family, r.error ? `[unparsed: ${r.error}]` : '');
  parts.push(`len=${r.length}`);
  if (r.mark) parts.push(`mark=0x${r.mark.toString(16)}`);
  if (r.uid !== undefined) parts.push(`uid=${r.uid}`);
  return parts.filter(Boolean).join(' ');
}

export const queueNum = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--queue must be 0 to 65535');
  return n;
};
export const chainName = (v: string, prev: string[] = []) => {
  const c = v.toUpperCase();
  if (!['INPUT', 'OUTPUT', 'FORWARD'].includes(c))
    throw new InvalidArgumentError(`unknown chain "${v}" (INPUT, OUTPUT, FORWARD)`);
  return [...prev, c];
};

/** `0x10`, `16` or `0x10/0xf0`: a mark and an optional mask (u32 each). */
export function markArg(v: string): { mark: number; mask?: number } {
  const [m, k, extra] = v.split('/');
  const u32 = (t: string | undefined) => {
    const n = t !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(t.trim()) ? Number(t.trim()) : Number.NaN;
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new InvalidArgumentError(`--mark must be MARK or MARK/MASK, each 0 to 0xffffffff, got "${v}"`);
    return n;
  };
  if (extra !== undefined) return u32(undefined) as never; // three parts: refused with the same message
  return k === undefined ? { mark: u32(m) } : { mark: u32(m), mask: u32(k) };
}

/** The iptables jump rules of --rule/--match/--family (or --queue-rule/--queue-match), or undefined without chains. */
export function queueRules(
  chains: NfqueueRules['chains'] | undefined,
  match: string | undefined,
  family: 'ipv4' | 'ipv6' | 'all' = 'all',
): NfqueueRules | undefined {
  if (!chains) return undefined;
  return {
    chains,
    match: match ? match.trim().split(/\s+/) : undefined,
    families: family === 'all' ? ['ipv4', 'ipv6'] : [family],
  };
}

export function nfqueueCommand(): Command {
  return new Command('nfqueue')
    .description(
      'print packets queued to an NFQUEUE queue and accept each one (IPv4 and IPv6); with --daemon, the packets of your --mark on the queue flowgrabd shares',
    )
    .option('--queue <n>', 'queue number (0-65535); required without --daemon', queueNum)
    .option('--mark <mark[/mask]>', 'with --daemon: take the packets with this mark from the shared queue', markArg)
    .addOption(
      new Option('--verdict <verdict>', 'the verdict to give each packet once printed')
        .choices(['accept', 'drop'])
        .default('accept'),
    )
    .option(
      '--rule <chains...>',
      'queue this traffic while running: iptables/ip6tables jump rules from INPUT, OUTPUT and/or FORWARD',
      chainName,
    )
    .option('--match <args>', 'with --rule: extra iptables match arguments, e.g. "-p tcp --dport 443"')
    .addOption(
      new Option('--family <family>', 'with --rule: which tables').choices(['ipv4', 'ipv6', 'all']).default('all'),
    )
    .option(
      '--copy-range <bytes>',
      'bytes of each packet to copy (0 = metadata only)',
      positiveInt('--copy-range'),
      0xffff,
    )
    .option('--max-len <n>', 'packets the kernel holds for us at most', positiveInt('--max-len'), 1024)
    .option('--no-fail-open', 'drop (instead of accept) packets the queue cannot take')
    .option('--netns <name>', 'use this network namespace (ip netns) instead of our own')
    .option('--json', 'print records as NDJSON, one per line (payload as hex)')
    .option('--count <n>', 'stop after printing n packets', positiveInt('--count'))
    .option('--duration <s>', 'stop after s seconds', seconds)
    .action(async (o, cmd: Command) => {
      const daemon = daemonPath(cmd);
      if (daemon) {
        if (!o.mark) throw new InvalidArgumentError('with --daemon, --mark is required (the packets you take)');
        process.exitCode = await viaDaemon(daemon, o);
        return;
      }
      if (o.mark) throw new InvalidArgumentError('--mark needs --daemon (flowgrabd shares a queue by mark)');
      if (o.queue === undefined) throw new InvalidArgumentError('--queue is required');
      const [{ nfqueue }, { packetToJson }] = await Promise.all([
        import('../sources/nfqueue/source.js'),
        import('../sources/nfqueue/json.js'),
      ]);
      if (o.match && !o.rule) throw new InvalidArgumentError('--match needs --rule');
      const source = nfqueue({
        queue: o.queue,
        copyRange: o.copyRange,
        maxLen: o.maxLen,
        failOpen: o.failOpen,
        netns: o.netns,
        rules: queueRules(o.rule, o.match, o.family),
        notices: { next: logNotice },
      });
      // Printed first, then accepted: a packet is never held longer than its line takes.
      const accept = (p: QueuedPacket) => {
        try {
          p.verdict(o.verdict);
        } catch {
          // Already decided (timed out): nothing to do.
        }
      };
      const format = (p: QueuedPacket) => {
        const line = formatPacket(p);
        accept(p);
        return line;
      };
      const toJson = (p: QueuedPacket) => {
        const line = packetToJson(p);
        accept(p);
        return line;
      };
      process.exitCode = await runStream(
        source,
        format,
        { json: Boolean(o.json), count: o.count, durationS: o.duration },
        toJson,
      );
      // The last subscriber leaving decides what is still queued, removes the rules and unbinds: wait for it.
      await sourcesTornDown();
    });
}

/** The daemon's shared queue: packets of our mark, printed, then decided. */
async function viaDaemon(
  path: string,
  o: {
    mark: { mark: number; mask?: number };
    verdict: 'accept' | 'drop';
    json?: boolean;
    count?: number;
    duration?: number;
  },
): Promise<number> {
  const [{ RemoteFlowgrab }, { packetToJson }] = await Promise.all([
    import('../daemon/client.js'),
    import('../sources/nfqueue/json.js'),
  ]);
  const fg = await RemoteFlowgrab.connect(path);
  try {
    const q = await fg.queue(o.mark);
    q.notices$.subscribe((n) => logNotice({ kind: 'warning', message: n.message, ts: n.ts } as never));
    const decide = (p: RemotePacket) => {
      p.verdict(o.verdict).catch((err: Error) => logLine('warn', err.message));
    };
    return await runStream(
      q.packets$,
      (p) => {
        const line = formatPacket(p);
        decide(p);
        return line;
      },
      { json: Boolean(o.json), count: o.count, durationS: o.duration },
      (p) => {
        const line = packetToJson(p);
        decide(p);
        return line;
      },
    );
  } finally {
    await fg.close();
  }
}
