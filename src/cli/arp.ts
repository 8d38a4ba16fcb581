/** `flowgrab arp`: the neighbour table (ARP and NDP) as `ip neigh` shows it, or its changes as they happen. */
import { Command, Option } from 'commander';
import type { NeighRecord } from '../sources/arp/record.js';
import { printable } from '../util/printable.js';
import { daemonPath } from './daemon-path.js';
import { logNotice } from './output.js';
import { runStream } from './run.js';
import { runOptions, runSourceViaDaemon, sourceOutputOptions } from './source-cli.js';

const TAG = { dump: '', new: '[NEW] ', update: '[UPDATE] ', delete: '[DELETE] ' } as const;

/** One line in `ip neigh` form (`IP dev IF lladdr MAC [router] STATE`), then the bridge port when known. */
export function formatNeigh(r: NeighRecord): string {
  let s = `${TAG[r.type]}${r.ip} dev ${printable(r.ifname)}`;
  if (r.mac) s += ` lladdr ${r.mac}`;
  if (r.router) s += ' router';
  s += ` ${r.state.join(' ')}`;
  if (r.port) s += ` port ${printable(r.port)}`;
  if (r.resync) s += ' (resync)';
  return s;
}

export function arpCommand(): Command {
  return sourceOutputOptions(
    new Command('arp')
      .description(
        'print the neighbour table (ARP/NDP: which IP is at which MAC, behind which bridge port), or follow it',
      )
      .option('--dump', 'print the current table (alone: print it and exit)')
      .option('--events', 'follow changes: new, update, delete (the default without --dump)')
      .addOption(new Option('--family <family>', 'address family').choices(['ipv4', 'ipv6', 'all']).default('all'))
      .option('--all', 'also FAILED, INCOMPLETE, NOARP and multicast entries (like `ip neigh show nud all`)'),
  ).action(async (o, cmd: Command) => {
    const params = { dump: Boolean(o.dump), events: Boolean(o.events) || !o.dump, family: o.family, netns: o.netns };
    const daemon = daemonPath(cmd);
    if (daemon) {
      process.exitCode = await runSourceViaDaemon(daemon, 'arp', { ...params, all: Boolean(o.all) }, o, formatNeigh);
      return;
    }
    // Loaded on use, so other commands do not pay for it at startup.
    const { arp } = await import('../sources/arp/source.js');
    const stream = arp({ ...params, includeUnusable: Boolean(o.all), notices: { next: logNotice } });
    process.exitCode = await runStream(stream, formatNeigh, runOptions(o));
  });
}
