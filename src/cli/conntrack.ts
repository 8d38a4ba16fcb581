/** `flowgrab conntrack`: dump the table or follow its events. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { formatConntrack, logNotice } from './output.js';
import { runStream } from './run.js';

export const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`);
  return n;
};
export const seconds = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('seconds must be a positive number');
  return n;
};
const eventList = (v: string) => {
  const names = v.split(',').map((s) => s.trim());
  for (const n of names)
    if (!['new', 'update', 'destroy'].includes(n))
      throw new InvalidArgumentError(`unknown event "${n}" (new, update, destroy)`);
  return names as ('new' | 'update' | 'destroy')[];
};

export function conntrackCommand(): Command {
  return new Command('conntrack')
    .description('dump the connection tracking table, or follow its events')
    .option('--dump', 'print the current table first (alone: print it and exit)')
    .option('--events <list>', 'follow events: new,update,destroy', eventList)
    .option('--poll <ms>', 'also dump every <ms> and print counter deltas as updates', positiveInt('--poll'))
    .addOption(new Option('--family <family>', 'address family').choices(['ipv4', 'ipv6', 'all']).default('all'))
    .option('--zone <n>', 'only this conntrack zone', positiveInt('--zone'))
    .option('--mark <n>', 'only entries with this mark', positiveInt('--mark'))
    .option('--netns <name>', 'watch this network namespace (ip netns) instead of our own')
    .option('--json', 'print records as NDJSON, one per line')
    .option('--count <n>', 'stop after printing n records', positiveInt('--count'))
    .option('--duration <s>', 'stop after s seconds', seconds)
    .option('--set-events-sysctl', 'set nf_conntrack_events=1 so every flow reports its DESTROY')
    .option('--accounting', 'set nf_conntrack_acct=1 and nf_conntrack_timestamp=1 (new flows get counters)')
    .option('--reliable', 'the kernel keeps events we cannot take yet (and drops traffic when it must), see README')
    .action(async (o) => {
      const [{ conntrack }, { conntrackToJson }, { ConntrackJsonWriter }] = await Promise.all([
        import('../sources/conntrack/source.js'),
        import('../sources/conntrack/json.js'),
        import('../sources/conntrack/json-writer.js'),
      ]);
      const events = o.events ?? (o.dump || o.poll ? [] : ['new', 'update', 'destroy']);
      const stream = conntrack({
        dump: Boolean(o.dump),
        events,
        pollIntervalMs: o.poll ?? 0,
        family: o.family,
        zone: o.zone,
        mark: o.mark,
        netns: o.netns,
        setEventsSysctl: Boolean(o.setEventsSysctl),
        setAccounting: Boolean(o.accounting),
        reliable: Boolean(o.reliable),
        notices: { next: logNotice },
      });
      const opts = { json: Boolean(o.json), count: o.count, durationS: o.duration };
      // --json streams into large buffers without a string per record.
      const writer = o.json ? new ConntrackJsonWriter() : undefined;
      process.exitCode = await runStream(stream, formatConntrack, opts, conntrackToJson, writer);
    });
}
