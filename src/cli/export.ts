/**
 * `flowgrab export`: flows to a collector (IPFIX, NetFlow v9), a file
 * (NDJSON) or a broker (MQTT). Without a graph it exports the conntrack
 * table of the namespace: flows at their end, long ones every
 * --active-timeout seconds, and what is pending at SIGTERM/SIGINT. With
 * --daemon the flow runs in flowgrabd (export-daemon.ts) and the export here.
 */
import { lookup } from 'node:dns/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { FlowgrabError } from '../errors.js';
import { parseHostPort } from '../util/hostport.js';
import { positiveInt, seconds } from './args.js';
import { daemonPath } from './graph-run.js';
import { logLine, logNotice } from './output.js';

const nonNegative = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number ≥ 0');
  return n;
};

interface ExportCliOptions {
  ipfix?: string;
  tcp?: boolean;
  netflow9?: string;
  ndjson?: string;
  mqtt?: string;
  nats?: string;
  subject?: string;
  stream?: string;
  replicas?: number;
  spool?: string;
  spoolBytes?: number;
  host?: string;
  activeTimeout: number;
  netns?: string;
  uniflow?: boolean;
  domain?: number;
  mtu?: number;
  templateRefresh?: number;
  templateTimeout?: number;
  rotateBytes?: number;
  keep?: number;
  topic?: string;
  qos?: string;
  queue?: number;
  duration?: number;
  setSysctls?: boolean;
  buffer?: number;
}

async function makeSink(o: ExportCliOptions) {
  const chosen = [o.ipfix, o.netflow9, o.ndjson, o.mqtt, o.nats].filter((x) => x !== undefined);
  if (chosen.length !== 1)
    throw new InvalidArgumentError('give exactly one of --ipfix, --netflow9, --ndjson, --mqtt, --nats');
  const natsOnly = { subject: o.subject, stream: o.stream, replicas: o.replicas };
  for (const [k, v] of Object.entries(natsOnly))
    if (v !== undefined && !o.nats) throw new InvalidArgumentError(`--${k} goes with --nats`);
  if ((o.spool !== undefined || o.spoolBytes !== undefined) && !(o.nats || o.mqtt || (o.ipfix && o.tcp)))
    throw new InvalidArgumentError('--spool and --spool-bytes go with --nats, --mqtt or --ipfix --tcp');
  if (o.tcp && !o.ipfix) throw new InvalidArgumentError('--tcp goes with --ipfix');
  const sinks = await import('../export/index.js');
  const enc = {
    maxMessageBytes: o.mtu,
    templateRefreshPackets: o.templateRefresh,
    templateRefreshSeconds: o.templateTimeout,
    queueRecords: o.queue,
  };
  if (o.ipfix)
    return sinks.ipfixSink({
      ...enc,
      collector: o.ipfix,
      transport: o.tcp ? 'tcp' : 'udp',
      observationDomainId: o.domain,
      biflow: !o.uniflow,
      spool: o.tcp && o.spool ? { dir: o.spool, maxBytes: o.spoolBytes } : undefined,
    });
  if (o.netflow9) return sinks.netflow9Sink({ ...enc, collector: o.netflow9, sourceId: o.domain });
  if (o.ndjson) return sinks.ndjsonSink({ file: o.ndjson, rotateBytes: o.rotateBytes, keep: o.keep });
  if (o.nats) {
    const { natsSink } = await import('../export/nats/index.js');
    return natsSink({
      servers: o.nats,
      subject: o.subject,
      name: o.stream,
      replicas: o.replicas,
      spoolDir: o.spool,
      spoolBytes: o.spoolBytes,
      host: o.host,
      notices: { next: logNotice },
    });
  }
  return sinks.mqttSink({
    url: o.mqtt ?? '',
    topic: o.topic,
    qos: o.qos === undefined ? undefined : (Number(o.qos) as 0 | 1 | 2),
    queueRecords: o.queue,
    spoolDir: o.spool,
    spoolBytes: o.spoolBytes,
    notices: { next: logNotice },
  });
}

/** A collector's host must resolve before anything starts: a typo is an error now, not silence later. */
async function checkCollector(o: ExportCliOptions): Promise<void> {
  const text = o.ipfix ?? o.netflow9;
  if (!text) return;
  const { host } = parseHostPort(text);
  try {
    await lookup(host);
  } catch (err) {
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `collector ${text}: cannot resolve ${host} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { op: 'export', cause: err },
    );
  }
}

async function run(graph: string | undefined, o: ExportCliOptions, daemon?: string): Promise<number> {
  if (daemon && o.setSysctls)
    throw new InvalidArgumentError('--set-sysctls is not for --daemon: the sysctls are for the daemon host to set');
  if (!daemon && o.buffer !== undefined) throw new InvalidArgumentError('--buffer goes with --daemon');
  await checkCollector(o);
  const sink = await makeSink(o);
  const ex = await import('../export/exporter.js');
  let close: () => Promise<void>;
  let stats: () => unknown;
  let failures = 0;
  const onError = (err: unknown) => {
    failures++;
    logLine('error', (err as Error).message ?? String(err));
  };
  let listening: Promise<void> = Promise.resolve();
  if (daemon) {
    const { exportViaDaemon } = await import('./export-daemon.js');
    try {
      ({ close, stats } = await exportViaDaemon(daemon, graph, sink, { ...o, onError }));
    } catch (err) {
      await sink.close();
      throw err;
    }
  } else if (!graph) {
    const e = ex.exportConntrack(sink, {
      netns: o.netns,
      activeTimeoutS: o.activeTimeout,
      notices: { next: logNotice },
      ready: (p) => (listening = p),
      setSysctls: o.setSysctls,
      onError,
    });
    close = () => e.close();
    stats = () => e.stats();
    // "export started" (below) promises that the event socket listens.
    await listening;
  } else {
    const [{ parseGraph }, { Flowgrab }, { withNetns }, { conntrack }, rx] = await Promise.all([
      import('../filters/parser.js'),
      import('../flow/flowgrab.js'),
      import('./graphs.js'),
      import('../sources/conntrack/source.js'),
      import('rxjs'),
    ]);
    const fg = new Flowgrab();
    const flow = fg.create({ name: 'export', bufferRecords: 100_000 });
    flow.populate(withNetns(parseGraph(graph), o.netns));
    try {
      await flow.instantiate();
    } catch (err) {
      await fg.close();
      await sink.close();
      throw err;
    }
    flow.notices$.subscribe(logNotice);
    const e = ex.exportRecords(flow.records$, sink, {
      activeTimeoutS: o.activeTimeout,
      // Only flows the graph let through are tracked, so a dump of the namespace just refreshes their counters.
      finalDump: () => rx.lastValueFrom(conntrack({ netns: o.netns, dump: true }).pipe(rx.toArray())),
      onError,
    });
    await flow.activate();
    close = async () => {
      await e.close();
      await fg.close();
    };
    stats = () => e.stats();
  }
  // Loss is never silent: say when the sink starts dropping, and how much, every few seconds.
  let reported = 0;
  let refused = 0;
  let sinkErrors = 0;
  const lossTimer = setInterval(() => {
    const s = sink.stats() as ReturnType<typeof sink.stats> & { backpressure?: number };
    if (s.dropped > reported) {
      logLine('warn', 'records not delivered', { sink: sink.kind, dropped: s.dropped - reported, why: s.lastError });
      reported = s.dropped;
    }
    // A sink that keeps failing (server unreachable, stream not creatable) says why.
    if (s.errors > sinkErrors) {
      logLine('warn', 'sink errors', {
        sink: sink.kind,
        errors: s.errors - sinkErrors,
        queued: s.queued,
        why: s.lastError,
      });
      sinkErrors = s.errors;
    }
    // Refusals keep records in the spool: not loss (yet), but the operator must know the stream is full.
    if ((s.backpressure ?? 0) > refused) {
      logLine('warn', 'backpressure: the stream refuses records, they wait in the spool', {
        sink: sink.kind,
        refused: (s.backpressure ?? 0) - refused,
        spooled: s.queued,
        why: s.lastError,
      });
      refused = s.backpressure ?? 0;
    }
  }, 5000);
  lossTimer.unref();
  await new Promise<void>((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
    if (o.duration !== undefined) setTimeout(done, o.duration * 1000);
    // From here a SIGTERM delivers what is pending: say so (scripts and tests wait for it).
    const st = sink.stats() as { recovered?: number };
    logLine('info', 'export started', { sink: sink.kind, ...(st.recovered ? { recovered: st.recovered } : {}) });
  });
  clearInterval(lossTimer);
  await close();
  const st = stats() as { sink: Record<string, unknown>; tracker: Record<string, unknown> };
  logLine('info', 'export finished', { sink: sink.kind, ...st.sink, ...prefix('tracker', st.tracker) });
  // Not a success: the source failed, or records came and none reached the sink (nor its spool).
  if (failures > 0) return 1;
  const { received = 0, sent = 0, queued = 0 } = st.sink as { received?: number; sent?: number; queued?: number };
  if (received > 0 && sent === 0 && queued === 0) {
    logLine('error', 'nothing was delivered', { sink: sink.kind, received, why: st.sink.lastError });
    return 1;
  }
  return 0;
}

const prefix = (p: string, o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}_${k}`, v]));

export function exportCommand(): Command {
  return new Command('export')
    .argument('[graph]', "a filter graph whose records to export (default: the conntrack table, with flows' deltas)")
    .description(
      'export flows: IPFIX or NetFlow v9 to a collector, NDJSON to a file, MQTT to a broker or NATS JetStream',
    )
    .option('--ipfix <host:port>', 'IPFIX (RFC 7011) to this collector, UDP unless --tcp')
    .option('--tcp', 'IPFIX over TCP (templates once per connection, reconnects)')
    .option('--netflow9 <host:port>', 'NetFlow v9 (RFC 3954) over UDP to this collector')
    .option('--ndjson <file>', 'NDJSON lines to this file (- for stdout)')
    .option('--mqtt <url>', 'publish each record as JSON to this broker (mqtt://host:port)')
    .option('--nats <urls>', 'publish each record to NATS JetStream (nats://host:4222[,nats://…]), spooled on disk')
    .option('--subject <template>', 'NATS subject, with {host}, {source}, {netns}; default flowgrab.{host}.{source}')
    .option('--stream <name>', 'NATS: the JetStream stream (created when missing), default flowgrab')
    .option('--replicas <n>', 'NATS: replicas of a stream created here, default 1', positiveInt('--replicas'))
    .option('--spool <dir>', 'NATS/MQTT/IPFIX-TCP: the on-disk spool (default under /var/lib/flowgrab/spool)')
    .option(
      '--spool-bytes <n>',
      'spool size limit, default 268435456; beyond it the oldest records are dropped and counted',
      positiveInt('--spool-bytes'),
    )
    .option('--host <name>', 'NATS: this exporter in subjects and message ids, default the host name')
    .option('--active-timeout <s>', 'a record for long flows every s seconds (0: only when they end)', nonNegative, 60)
    .option('--netns <name>', 'the network namespace (ip netns) whose flows to export')
    .option('--uniflow', 'IPFIX: two unidirectional records per connection instead of one RFC 5103 biflow record')
    .option('--domain <n>', 'IPFIX observation domain id / NetFlow v9 source id', positiveInt('--domain'))
    .option(
      '--mtu <bytes>',
      'largest message (UDP payload); default: what the path MTU to the collector allows, at most 8972 (1400 when unknown)',
      positiveInt('--mtu'),
    )
    .option(
      '--template-refresh <n>',
      'resend templates every n messages (UDP), default 20',
      positiveInt('--template-refresh'),
    )
    .option('--template-timeout <s>', 'resend templates every s seconds (UDP), default 30', nonNegative)
    .option('--rotate-bytes <n>', 'NDJSON: rotate the file before it exceeds n bytes', positiveInt('--rotate-bytes'))
    .option('--keep <n>', 'NDJSON: rotated files kept, default 5', positiveInt('--keep'))
    .option('--topic <template>', 'MQTT topic, fields in braces: flowgrab/flows/{family}/{src}')
    .addOption(new Option('--qos <n>', 'MQTT QoS').choices(['0', '1', '2']))
    .option('--queue <n>', 'records held while the collector (TCP) or broker is away', positiveInt('--queue'))
    .option(
      '--set-sysctls',
      'set nf_conntrack_events/acct/timestamp=1 in the namespace (every flow then ends with counters)',
    )
    .option('--duration <s>', 'stop after s seconds', seconds)
    .option('--buffer <n>', 'with --daemon: records flowgrabd buffers for us (default 1000)', positiveInt('--buffer'))
    .action(async (graph: string | undefined, o: ExportCliOptions, cmd: Command) => {
      process.exitCode = await run(graph, o, daemonPath(cmd));
    });
}
