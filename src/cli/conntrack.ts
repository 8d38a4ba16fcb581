/** `flowgrab conntrack`: dump the table or follow its events. */
import { Command, Option } from 'commander';
import { listOf, positiveInt, wholeNumber } from './args.js';
import { daemonPath } from './daemon-path.js';
import { formatConntrack, logNotice } from './output.js';
import { runStream, runWriting } from './run.js';
import { runOptions, runSourceViaDaemon, sourceOutputOptions } from './source-cli.js';

const eventList = listOf('event', ['new', 'update', 'destroy'] as const);

export function conntrackCommand(): Command {
  return sourceOutputOptions(
    new Command('conntrack')
      .description('dump the connection tracking table, or follow its events')
      .option('--dump', 'print the current table first (alone: print it and exit)')
      .option('--events <list>', 'follow events: new,update,destroy', eventList)
      .option('--poll <ms>', 'also dump every <ms> and print counter deltas as updates', positiveInt('--poll'))
      .addOption(new Option('--family <family>', 'address family').choices(['ipv4', 'ipv6', 'all']).default('all'))
      .option('--zone <n>', 'only this conntrack zone', wholeNumber('--zone'))
      .option('--mark <n>', 'only entries with this mark', wholeNumber('--mark'))
      .option('--set-events-sysctl', 'set nf_conntrack_events=1 so every flow reports its DESTROY')
      .option('--accounting', 'set nf_conntrack_acct=1 and nf_conntrack_timestamp=1 (new flows get counters)')
      .option('--reliable', 'the kernel keeps events we cannot take yet (and drops traffic when it must), see README'),
  ).action(async (o, cmd: Command) => {
    const events = o.events ?? (o.dump || o.poll ? [] : ['new', 'update', 'destroy']);
    const params = { dump: Boolean(o.dump), events, family: o.family, zone: o.zone, mark: o.mark, netns: o.netns };
    const daemon = daemonPath(cmd);
    if (daemon) {
      // The same source, run by flowgrabd under its policy: what a user without CAP_NET_ADMIN can do.
      const { conntrackToJson } = await import('../sources/conntrack/json.js');
      const poll = o.poll ? `${o.poll}ms` : undefined;
      process.exitCode = await runSourceViaDaemon(
        daemon,
        'conntrack',
        { ...params, poll },
        o,
        formatConntrack,
        conntrackToJson,
      );
      return;
    }
    const [
      { plainConntrackConfig },
      { conntrackStream, conntrackDumpPayloads },
      { conntrackToJson },
      { ConntrackJsonWriter },
      { receiveWorkers },
    ] = await Promise.all([
      import('../sources/conntrack/plain-config.js'),
      import('../sources/conntrack/stream.js'),
      import('../sources/conntrack/json.js'),
      import('../sources/conntrack/json-writer.js'),
      import('../netlink/batched.js'),
    ]);
    // A one-shot dump ends the process: reading it on a new worker thread cost more CPU than it saved (batched.ts).
    if (events.length === 0 && !o.poll) receiveWorkers.dumps = false;
    const options = {
      ...params,
      pollIntervalMs: o.poll ?? 0,
      setEventsSysctl: Boolean(o.setEventsSysctl),
      setAccounting: Boolean(o.accounting),
      reliable: Boolean(o.reliable),
      notices: { next: logNotice },
    };
    // The schema (and zod, ~150 ms of startup) only when the plain check refuses: it says what is wrong.
    const cfg = plainConntrackConfig(options);
    if (cfg && o.json && cfg.events.length === 0 && cfg.pollIntervalMs === 0 && o.duration === undefined) {
      // The table alone as NDJSON: each entry's kernel message written straight out, no record made.
      const writer = new ConntrackJsonWriter();
      const count: number = o.count ?? Number.POSITIVE_INFINITY;
      let printed = 0;
      process.exitCode = await runWriting(
        (end, wrote) =>
          conntrackDumpPayloads(cfg, options, (b, start, stop, type, flags) => {
            if (printed >= count) return;
            printed += writer.message(b, start, stop, type, flags, Date.now(), cfg.netns, cfg.zone);
            wrote();
            if (printed >= count) end();
          }),
        writer,
      );
      return;
    }
    const stream = cfg
      ? conntrackStream(cfg, options)
      : (await import('../sources/conntrack/source.js')).conntrack(options);
    // --json streams into large buffers without a string per record.
    const writer = o.json ? new ConntrackJsonWriter() : undefined;
    process.exitCode = await runStream(stream, formatConntrack, runOptions(o), conntrackToJson, writer);
  });
}
