/**
 * Runs a filter graph for a CLI command, in-process or through flowgrabd
 * (`--daemon PATH` / FLOWGRAB_DAEMON): shared by watch, record and, with
 * --daemon, the source commands (conntrack, dns, arp), which build the
 * equivalent one-source graph.
 */
import type { GraphSpec, Value } from '../filters/spec.js';
import { withNetns } from './graphs.js';
import { type LineWriter, logNotice } from './output.js';
import { runStream, viaDaemon } from './run.js';
import { formatAny, liveTable } from './table.js';

/** Records a flow asks flowgrabd to buffer unless --buffer says otherwise: within a modest policy limit. */
export const DAEMON_BUFFER_DEFAULT = 1000;
/** The largest --buffer accepted (flowgrabd's protocol refuses more). */
export const BUFFER_MAX = 1_000_000;

export { daemonPath } from './daemon-path.js';

export interface GraphRunOptions {
  json?: boolean;
  count?: number;
  duration?: number;
  netns?: string;
  daemon?: string;
  /** Records the flow buffers for a slow reader (default: the library's locally, DAEMON_BUFFER_DEFAULT remotely). */
  buffer?: number;
  /** Every record as a JSON line here instead of stdout (record --out). */
  out?: LineWriter;
  /** Called with each record (record counts them). */
  onRecord?: () => void;
  /** How to print a record (default: a table on a terminal, lines elsewhere). */
  format?: (r: Record<string, unknown>) => string;
  toJson?: (r: Record<string, unknown>) => string;
}

/** Parses `text` and applies --netns to the sources that name none. */
export async function parseForCli(text: string, netns?: string): Promise<GraphSpec> {
  const { parseGraph } = await import('../filters/parser.js');
  return withNetns(parseGraph(text), netns);
}

/** What instantiated() needs of a Flowgrab or a daemon connection. */
interface FlowFactory<H> {
  create(opts: { name: string; bufferRecords?: number }): H;
  close(): Promise<void>;
}

/** A new flow of `fg` holding `spec`, instantiated; when that fails, `fg` is closed and the error rethrown. */
export async function instantiated<H extends { populate(g: GraphSpec): unknown; instantiate(): Promise<void> }>(
  fg: FlowFactory<H>,
  spec: GraphSpec,
  opts: { name: string; bufferRecords?: number },
): Promise<H> {
  const flow = fg.create(opts);
  try {
    flow.populate(spec);
    await flow.instantiate();
  } catch (err) {
    await fg.close();
    throw err;
  }
  return flow;
}

export async function runGraph(graph: string | GraphSpec, o: GraphRunOptions): Promise<number> {
  const spec = typeof graph === 'string' ? await parseForCli(graph, o.netns) : graph;
  const { Flowgrab } = await import('../flow/flowgrab.js');
  const { connect } = await import('../daemon/client.js');
  viaDaemon.on = Boolean(o.daemon);
  const fg = o.daemon ? await connect(o.daemon) : new Flowgrab();
  const bufferRecords = o.buffer ?? (o.daemon ? DAEMON_BUFFER_DEFAULT : undefined);
  const flow = await instantiated(fg as FlowFactory<ReturnType<typeof fg.create<Record<string, unknown>>>>, spec, {
    name: 'cli',
    ...(bufferRecords === undefined ? {} : { bufferRecords }),
  });
  // Local flows report every notice; remote ones report loss.
  if ('notices$' in flow) flow.notices$.subscribe(logNotice);
  else flow.lost$.subscribe(logNotice);
  const stopProgress = replayProgress(typeof graph === 'string' ? graph : '', flow);
  const toJson = o.toJson ?? JSON.stringify;
  // Subscribed before activate: a remote flow's records$ is live, and a dump (or its end) can arrive with the
  // daemon's reply to activate, before the await below returns.
  const running = runStream(
    flow.records$,
    o.format ?? (process.stdout.isTTY ? liveTable() : formatAny),
    { json: Boolean(o.json) || o.out !== undefined, count: o.count, durationS: o.duration, out: o.out },
    (r) => {
      o.onRecord?.();
      return toJson(r);
    },
  );
  try {
    await flow.activate();
  } catch (err) {
    await fg.close();
    await running;
    throw err;
  }
  const code = await running;
  stopProgress();
  await fg.close();
  return code;
}

/** On a terminal, a replay shows how far it got (records, rate) on stderr; elsewhere nothing. */
function replayProgress(text: string, flow: { stats(): { nodes: { node: string; out: number }[] } }): () => void {
  if (!process.stderr.isTTY || !/\breplay\s*\(/.test(text)) return () => {};
  const t0 = Date.now();
  const show = () => {
    const n = flow.stats().nodes.find((x) => x.node === 'replay')?.out ?? 0;
    const secs = (Date.now() - t0) / 1000;
    process.stderr.write(`\rreplayed ${n} records (${Math.round(n / Math.max(secs, 0.001))}/s)  `);
  };
  const timer = setInterval(show, 500);
  timer.unref();
  return () => {
    clearInterval(timer);
    show();
    process.stderr.write('\n');
  };
}

/** A one-node graph: what `flowgrab conntrack|dns|arp --daemon` asks flowgrabd to run. */
export function sourceGraph(name: string, params: Record<string, Value | undefined>): GraphSpec {
  const clean: Record<string, Value> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined) clean[k] = v;
  return { version: 1, root: { type: 'node', name, args: [], params: clean } };
}
