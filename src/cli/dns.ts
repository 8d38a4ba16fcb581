/** `flowgrab dns`: DNS queries and responses the kernel sees, through NFLOG. */
import { Command } from 'commander';
import type { DnsRecord } from '../sources/dns/record.js';
import { printable as p } from '../util/printable.js';
import { listOf, wholeNumber } from './args.js';
import { daemonPath } from './daemon-path.js';
import { logNotice } from './output.js';
import { runStream } from './run.js';
import { runOptions, runSourceViaDaemon, sourceOutputOptions } from './source-cli.js';

/** One line per DNS record; every name and datum a packet carried goes through printable() (any byte may be in a label). */
export function formatDns(r: DnsRecord): string {
  const who = `${r.client}:${r.clientPort} ${r.kind === 'query' ? '→' : '←'} ${r.server}:${r.serverPort}`;
  if (r.error) return `${r.transport} ${r.hook.padEnd(7)} ${who} [unparseable: ${r.error}]`;
  const head = `${r.transport} ${r.hook.padEnd(7)} ${who} ${r.kind === 'query' ? 'Q' : 'R'} ${p(r.qname)} ${p(r.qtype)}`;
  if (r.kind === 'query') return head;
  const answers =
    r.resolved.length > 0
      ? r.resolved
          .map((x) => `${p(x.ip)} ttl=${x.ttl}${x.via.length ? ` via ${x.via.map(p).join(' → ')}` : ''}`)
          .join(', ')
      : r.answers.map((a) => `${p(a.type)} ${p(a.data)}`).join(', ');
  return `${head} ${p(r.rcode)}${answers ? ` ${answers}` : ''}${r.rtt !== undefined ? ` (${r.rtt.toFixed(1)} ms)` : ''}`;
}

export function dnsCommand(): Command {
  return sourceOutputOptions(
    new Command('dns')
      .description('follow DNS queries and responses (UDP and TCP, IPv4 and IPv6) through NFLOG')
      .option('--group <n>', 'NFLOG group to use', wholeNumber('--group'), 53)
      .option(
        '--hooks <list>',
        'where to capture: input,output,forward',
        listOf('hook', ['input', 'output', 'forward'] as const),
      )
      .option('--no-rules', 'do not install the logging rules (you log to the group yourself)'),
  ).action(async (o, cmd: Command) => {
    const params = { group: o.group, hooks: o.hooks, netns: o.netns };
    const daemon = daemonPath(cmd);
    if (daemon) {
      // flowgrabd owns the NFLOG group and the nft table; we only read its records.
      process.exitCode = await runSourceViaDaemon(daemon, 'dns', params, o, formatDns);
      return;
    }
    // Loaded on use, so other commands do not pay for the DNS decoder at startup.
    const { dns } = await import('../sources/dns/source.js');
    const stream = dns({ ...params, installRules: o.rules, notices: { next: logNotice } });
    process.exitCode = await runStream(stream, formatDns, runOptions(o));
  });
}
