#!/usr/bin/env node
/** flowgrabd: shares flowgrab's privileged sockets with local users, as the policy allows. */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { logLine } from './output.js';
import { reportError } from './run.js';

const program = new Command('flowgrabd')
  .description('the flowgrab daemon: flow handles over a Unix socket, each client limited by the policy')
  .version(VERSION)
  .option('--socket <path>', 'Unix socket to listen on', '/run/flowgrab/flowgrab.sock')
  .requiredOption('--policy <file>', 'the policy file (JSON); SIGHUP reloads it')
  .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
  .action(async (o) => {
    const [{ Daemon }, { loadPolicy }, { serveMetrics }] = await Promise.all([
      import('../daemon/server.js'),
      import('../auth/load.js'),
      import('../daemon/metrics.js'),
    ]);
    const d = new Daemon({ socket: o.socket, policy: () => loadPolicy(o.policy), log: logLine });
    await d.listen();
    const metrics = o.metrics ? await serveMetrics(d, o.metrics) : undefined;
    if (metrics) logLine('info', 'metrics', { url: `http://${o.metrics}/metrics` });
    process.on('SIGHUP', () => void d.reload());
    const stop = async (sig: string) => {
      logLine('info', 'stopping', { signal: sig });
      metrics?.close();
      await d.close();
      process.exit(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  reportError(err);
  process.exitCode = 1;
}
