/**
 * `flowgrab --daemon PATH export …`: the flow runs in flowgrabd under the
 * caller's policy, its records come back over the socket, and the export
 * (tracking, encoding, sending) happens here, in the CLI's process. Without
 * a graph the flow is the conntrack table (dump, NEW and DESTROY events,
 * dumps every active timeout); at the end a second flow dumps the table so
 * pending growth is exported, as in-process.
 */
import type { FlowSink } from '../export/sink.js';
import type { GraphSpec } from '../filters/spec.js';
import { DAEMON_BUFFER_DEFAULT, instantiated, parseForCli, sourceGraph } from './graph-run.js';
import { logNotice } from './output.js';
import { viaDaemon } from './run.js';

export interface DaemonExportOptions {
  netns?: string;
  /** Seconds between records of a long flow (0: only at its end). */
  activeTimeout: number;
  /** Records flowgrabd buffers per flow for us (default DAEMON_BUFFER_DEFAULT). */
  buffer?: number;
  onError(err: unknown): void;
}

/** Starts exporting `graph` (or the conntrack table) through flowgrabd at `daemon` into `sink`. */
export async function exportViaDaemon(
  daemon: string,
  graph: string | undefined,
  sink: FlowSink,
  o: DaemonExportOptions,
): Promise<{ close(): Promise<void>; stats(): unknown }> {
  const [{ connect }, ex, rx] = await Promise.all([
    import('../daemon/client.js'),
    import('../export/exporter.js'),
    import('rxjs'),
  ]);
  viaDaemon.on = true;
  const pollMs = ex.pollFor(ex.activeTimeoutMs(o.activeTimeout));
  // NEW and DESTROY: whether the kernel timestamps flows is the daemon's to know, and NEW gives the start time.
  const table = (params: Record<string, unknown>): GraphSpec =>
    sourceGraph('conntrack', { netns: o.netns, ...params } as never);
  const spec = graph
    ? await parseForCli(graph, o.netns)
    : table({ dump: true, events: ['new', 'destroy'], poll: pollMs ? `${pollMs}ms` : undefined });
  const bufferRecords = o.buffer ?? DAEMON_BUFFER_DEFAULT;
  const fg = await connect(daemon);
  const flow = await instantiated(fg, spec, { name: 'export', bufferRecords });
  flow.lost$.subscribe(logNotice);
  const finalDump = async () => {
    const dump = fg.create({ name: 'export-final-dump', bufferRecords });
    dump.populate(table({ dump: true, events: [] }));
    await dump.instantiate();
    const all = rx.lastValueFrom(dump.records$.pipe(rx.toArray()));
    await dump.activate();
    try {
      return await all;
    } finally {
      await dump.close();
    }
  };
  const e = ex.exportRecords(flow.records$, sink, {
    activeTimeoutS: o.activeTimeout,
    pollIntervalMs: graph ? undefined : pollMs,
    finalDump: finalDump as () => Promise<never[]>,
    // The whole table is the stream without a graph: its final dump adopts untracked flows, as in-process.
    finalDumpAdopts: !graph,
    onError: o.onError,
  });
  await flow.activate();
  return {
    close: async () => {
      await e.close();
      await fg.close();
    },
    stats: () => e.stats(),
  };
}
