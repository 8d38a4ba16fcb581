/** `flowgrab watch`, `flowgrab record` and `flowgrab graph check`: run or check a filter graph. */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { VERSION } from '../version.js';
import { positiveInt, seconds } from './args.js';
import { BUFFER_MAX, daemonPath, parseForCli, runGraph } from './graph-run.js';
import { sourcesOf } from './graphs.js';
import { LineWriter, logLine, printError } from './output.js';
import { reportError } from './run.js';

export { daemonPath } from './graph-run.js';
export { formatAny, liveTable } from './table.js';

const bufferOpt = (c: Command) =>
  c.option(
    '--buffer <n>',
    `records the flow buffers for a slow reader (through --daemon default 1000, at most ${BUFFER_MAX})`,
    (v: string) => {
      const n = positiveInt('--buffer')(v);
      if (n > BUFFER_MAX) throw new InvalidArgumentError(`--buffer must be ≤ ${BUFFER_MAX}`);
      return n;
    },
  );

const common = (c: Command) =>
  bufferOpt(
    c
      .option('--netns <name>', 'sources without netns= watch this network namespace')
      .option('--count <n>', 'stop after n records', positiveInt('--count'))
      .option('--duration <s>', 'stop after s seconds', seconds),
  );

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
    .requiredOption('--out <file>', 'the recording to write (replaced only when the recording starts)')
    .action(async (graph: string, o, cmd: Command) => {
      // Parse and check before touching anything: a bad graph must never cost an existing recording.
      const spec = await parseForCli(graph, o.netns);
      // The built-in sources register themselves when the flow runtime loads: needed to tell sources from filters.
      const [{ lookupNode }] = await Promise.all([import('../filters/registry.js'), import('../flow/flowgrab.js')]);
      // Written beside the target and renamed over it at the end, so F is either the old file or a whole recording.
      const tmp = join(dirname(o.out), `.${basename(o.out)}.${process.pid}.tmp`);
      // Records are everyone's traffic: readable by the recording's owner only.
      const file = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      await new Promise<void>((resolve, reject) => file.once('open', () => resolve()).once('error', reject));
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
      let code: number;
      try {
        code = await runGraph(spec, { ...o, daemon: daemonPath(cmd), out: w, onRecord: () => void n++ });
        w.flush();
        await new Promise<void>((r, j) => file.end((e?: Error | null) => (e ? j(e) : r())));
      } catch (err) {
        file.destroy();
        await rm(tmp, { force: true });
        throw err;
      }
      if (code !== 0 && n === 0) {
        await rm(tmp, { force: true });
        process.exitCode = code;
        return;
      }
      await rename(tmp, o.out);
      logLine('info', 'recording written', { file: o.out, records: n });
      process.exitCode = code;
    });
}

export function graphCommand(): Command {
  const g = new Command('graph').description('work with filter graphs');
  g.command('list')
    .option('--json', 'print the nodes as JSON')
    .description('every source and filter: its description, parameters and the capabilities a policy must grant')
    .action(async (o) => {
      const { graphListText, listNodes } = await import('./node-tables.js');
      process.stdout.write(`${o.json ? JSON.stringify(listNodes(true), null, 2) : graphListText()}\n`);
    });
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
          for (const i of issues) printError(i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message);
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
      const clients = st.clients;
      process.stdout.write(
        `clients ${st.clientCount ?? clients.length}, connections ${st.connections}, bad frames ${st.badFrames}, dropped to slow clients ${st.droppedToClients}\n`,
      );
      for (const c of clients) {
        process.stdout.write(`client ${c.client} pid ${c.pid} uid ${c.uid}${c.user ? ` (${c.user})` : ''}\n`);
        for (const f of c.flows) {
          process.stdout.write(
            `  flow ${f.flow} ${f.name} [${f.state}] sent ${f.sent} dropped ${f.droppedToClient + f.buffer.dropped} missed ${f.missed}: ${f.graph}\n`,
          );
        }
      }
    });
}
