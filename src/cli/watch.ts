/** `flowgrab watch`, `flowgrab record` and `flowgrab graph check`: run or check a filter graph. */
import { createWriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { positiveInt, seconds } from './conntrack.js';
import { sourcesOf, withNetns } from './graphs.js';
import { LineWriter, logLine, logNotice } from './output.js';
import { reportError, runStream } from './run.js';

/**
 * On a terminal, windowed aggregates (count, sum) are shown as a table redrawn
 * each window, largest first; anything else scrolls as lines.
 */
export function liveTable(): (r: Record<string, unknown>) => string {
  let end: unknown;
  let rows: Record<string, unknown>[] = [];
  return (r) => {
    if (r.type !== 'count' && r.type !== 'sum') return formatAny(r);
    if (r.end !== end) {
      end = r.end;
      rows = [];
    }
    rows.push(r);
    const metric = (x: Record<string, unknown>) => Number(x.type === 'sum' ? x.sum : x.count);
    const sorted = [...rows].sort((a, b) => metric(b) - metric(a)).slice(0, (process.stdout.rows ?? 40) - 3);
    const lines = sorted.map((x) => {
      const { type: _t, ts: _ts, start: _s, end: _e, count, sum, ...key } = x;
      return `${String(sum ?? count).padStart(12)}  ${flat(key)}`;
    });
    // Clear the screen and redraw: the newest window's rows so far.
    return `\x1b[2J\x1b[H${r.type} per key, window ending ${new Date(Number(r.end)).toLocaleTimeString()}\n${lines.join('\n')}`;
  };
}

/** One readable line per record: aggregates as key=value rows, everything else compact. */
export function formatAny(r: Record<string, unknown>): string {
  if (r.type === 'top' && Array.isArray(r.items)) {
    return [
      `top ${new Date(Number(r.end)).toISOString()}`,
      ...r.items.map((i, n) => `  ${String(n + 1).padStart(3)}. ${flat(i as Record<string, unknown>)}`),
    ].join('\n');
  }
  const { type, ts: _ts, ...rest } = r;
  return `${String(type ?? '').padEnd(8)} ${flat(rest)}`;
}

function flat(o: Record<string, unknown>, prefix = ''): string {
  return Object.entries(o)
    .flatMap(([k, v]) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? [flat(v as Record<string, unknown>, `${prefix}${k}.`)]
        : [`${prefix}${k}=${Array.isArray(v) ? JSON.stringify(v) : String(v)}`],
    )
    .join(' ');
}

/** The daemon to use, from --daemon or FLOWGRAB_DAEMON; none means in-process. */
export function daemonPath(cmd?: Command): string | undefined {
  return (cmd?.optsWithGlobals().daemon as string | undefined) ?? process.env.FLOWGRAB_DAEMON;
}

async function load(text: string, netns?: string, daemon?: string) {
  const [{ parseGraph }, { Flowgrab }] = await Promise.all([
    import('../filters/parser.js'),
    import('../flow/flowgrab.js'),
  ]);
  const spec = withNetns(parseGraph(text), netns);
  return { spec, fg: daemon ? await Flowgrab.connect(daemon) : new Flowgrab() };
}

async function runGraph(
  text: string,
  o: { json?: boolean; count?: number; duration?: number; netns?: string; daemon?: string },
  sink?: (line: string) => void,
): Promise<number> {
  const { spec, fg } = await load(text, o.netns, o.daemon);
  const flow = fg.create({ name: 'cli' });
  flow.populate(spec);
  try {
    await flow.instantiate();
  } catch (err) {
    await fg.close();
    throw err;
  }
  // Local flows report every notice; remote ones report loss.
  if ('notices$' in flow) flow.notices$.subscribe(logNotice);
  else (flow as { lost$: { subscribe(f: typeof logNotice): unknown } }).lost$.subscribe(logNotice);
  const stopProgress = replayProgress(text, flow);
  await flow.activate();
  const code = sink
    ? await runStream(
        flow.records$,
        () => '',
        { json: true, count: o.count, durationS: o.duration },
        (r) => {
          const line = JSON.stringify(r);
          sink(line);
          return line;
        },
      )
    : await runStream(flow.records$, process.stdout.isTTY ? liveTable() : formatAny, {
        json: Boolean(o.json),
        count: o.count,
        durationS: o.duration,
      });
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

const common = (c: Command) =>
  c
    .option('--netns <name>', 'sources without netns= watch this network namespace')
    .option('--count <n>', 'stop after n records', positiveInt('--count'))
    .option('--duration <s>', 'stop after s seconds', seconds);

export function watchCommand(): Command {
  return common(
    new Command('watch').argument(
      '<graph>',
      "a filter graph, e.g. 'conntrack() -> match(proto == tcp) -> count(by=orig.src, every=10s)'",
    ),
  )
    .description('run a filter graph and print what it outputs')
    .option('--json', 'print records as NDJSON, one per line')
    .action(async (graph: string, o, cmd: Command) => {
      process.exitCode = await runGraph(graph, { ...o, daemon: daemonPath(cmd) });
    });
}

export function recordCommand(): Command {
  return common(new Command('record').argument('<graph>', 'a filter graph'))
    .description('write what a graph outputs to an NDJSON file (a header line first) for replay(file=…)')
    .requiredOption('--out <file>', 'the recording to write')
    .action(async (graph: string, o, cmd: Command) => {
      const { spec } = await load(graph, o.netns);
      const { lookupNode } = await import('../filters/registry.js');
      const file = createWriteStream(o.out);
      const w = new LineWriter(file);
      const header = {
        flowgrab: 'recording',
        version: 1,
        flowgrabVersion: VERSION,
        host: hostname(),
        started: Date.now(),
        graph,
        sources: sourcesOf(spec, (n) => lookupNode(n)?.kind === 'source'),
      };
      w.line(JSON.stringify(header));
      let n = 0;
      process.exitCode = await runGraph(graph, { ...o, json: true, daemon: daemonPath(cmd) }, (line) => {
        n++;
        w.line(line);
      });
      w.flush();
      await new Promise<void>((r) => file.end(r));
      logLine('info', 'recording written', { file: o.out, records: n });
    });
}

export function graphCommand(): Command {
  const g = new Command('graph').description('work with filter graphs');
  g.command('check')
    .argument('<graph>', 'a filter graph')
    .option('--json', 'print the GraphSpec as JSON instead of normalised text')
    .description('parse and validate a graph; print it normalised, or every problem (exit 1)')
    .action(async (text: string, o) => {
      try {
        const [{ parseGraph }, { printGraph }, { Flowgrab }] = await Promise.all([
          import('../filters/parser.js'),
          import('../filters/print.js'),
          import('../flow/flowgrab.js'),
        ]);
        const spec = parseGraph(text);
        const issues = new Flowgrab().check(spec);
        if (issues.length) {
          for (const i of issues) process.stderr.write(`${i.path.join('.')}: ${i.message}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`${o.json ? JSON.stringify(spec, null, 2) : printGraph(spec)}\n`);
      } catch (err) {
        reportError(err);
        process.exitCode = 1;
      }
    });
  return g;
}

export function statusCommand(): Command {
  return new Command('status')
    .description("flowgrabd's clients, flows and counters (needs --daemon PATH or FLOWGRAB_DAEMON)")
    .option('--json', 'print the status as JSON')
    .action(async (o, cmd: Command) => {
      const path = daemonPath(cmd);
      if (!path) throw new Error('status needs a daemon: flowgrab --daemon PATH status');
      const { RemoteFlowgrab } = await import('../daemon/client.js');
      const c = await RemoteFlowgrab.connect(path);
      const st = await c.status();
      await c.close();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
        return;
      }
      const clients = st.clients as {
        client: number;
        pid: number;
        uid: number;
        user?: string;
        flows: Record<string, unknown>[];
      }[];
      process.stdout.write(
        `clients ${st.clientCount ?? clients.length}, connections ${st.connections}, bad frames ${st.badFrames}, dropped to slow clients ${st.droppedToClients}\n`,
      );
      for (const c of clients) {
        process.stdout.write(`client ${c.client} pid ${c.pid} uid ${c.uid}${c.user ? ` (${c.user})` : ''}\n`);
        for (const f of c.flows) {
          const buf = f.buffer as { dropped: number; highWater: number };
          process.stdout.write(
            `  flow ${f.flow} ${f.name} [${f.state}] sent ${f.sent} dropped ${Number(f.droppedToClient) + buf.dropped} missed ${f.missed}: ${f.graph}\n`,
          );
        }
      }
    });
}
