/** `flowgrab arp`: the neighbour table (ARP and NDP) as `ip neigh` shows it, or its changes as they happen. */
import { Command, Option } from 'commander';
import type { NeighRecord } from '../sources/arp/record.js';
import { positiveInt, seconds } from './args.js';
import { daemonPath, runGraph, sourceGraph } from './graph-run.js';
import { logNotice } from './output.js';
import { runStream } from './run.js';

const TAG = { dump: '', new: '[NEW] ', update: '[UPDATE] ', delete: '[DELETE] ' } as const;

/** One line in `ip neigh` form (`IP dev IF lladdr MAC [router] STATE`), then the bridge port when known. */
export function formatNeigh(r: NeighRecord): string {
  let s = `${TAG[r.type]}${r.ip} dev ${r.ifname}`;
  if (r.mac) s += ` lladdr ${r.mac}`;
  if (r.router) s += ' router';
  s += ` ${r.state.join(' ')}`;
  if (r.port) s += ` port ${r.port}`;
  if (r.resync) s += ' (resync)';
  return s;
}

export function arpCommand(): Command {
  return new Command('arp')
    .description(
      'print the neighbour table (ARP/NDP: which IP is at which MAC, behind which bridge port), or follow it',
    )
    .option('--dump', 'print the current table (alone: print it and exit)')
    .option('--events', 'follow changes: new, update, delete (the default without --dump)')
    .addOption(new Option('--family <family>', 'address family').choices(['ipv4', 'ipv6', 'all']).default('all'))
    .option('--all', 'also FAILED, INCOMPLETE, NOARP and multicast entries (like `ip neigh show nud all`)')
    .option('--netns <name>', 'watch this network namespace (ip netns) instead of our own')
    .option('--json', 'print records as NDJSON, one per line')
    .option('--count <n>', 'stop after printing n records', positiveInt('--count'))
    .option('--duration <s>', 'stop after s seconds', seconds)
    .option('--buffer <n>', 'with --daemon: records flowgrabd buffers for us (default 1000)', positiveInt('--buffer'))
    .action(async (o, cmd: Command) => {
      const opts = { json: Boolean(o.json), count: o.count, durationS: o.duration };
      const daemon = daemonPath(cmd);
      if (daemon) {
        const params = {
          dump: Boolean(o.dump),
          events: Boolean(o.events) || !o.dump,
          family: o.family,
          all: Boolean(o.all),
        };
        process.exitCode = await runGraph(sourceGraph('arp', { ...params, netns: o.netns }), {
          ...opts,
          duration: o.duration,
          daemon,
          buffer: o.buffer,
          format: (r) => formatNeigh(r as never),
        });
        return;
      }
      // Loaded on use, so other commands do not pay for it at startup.
      const { arp } = await import('../sources/arp/source.js');
      const stream = arp({
        dump: Boolean(o.dump),
        events: Boolean(o.events) || !o.dump,
        family: o.family,
        includeUnusable: Boolean(o.all),
        netns: o.netns,
        notices: { next: logNotice },
      });
      process.exitCode = await runStream(stream, formatNeigh, opts);
    });
}
