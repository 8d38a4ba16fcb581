#!/usr/bin/env node
/** flowgrabd: shares flowgrab's privileged sockets with local users, as the policy allows. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { FlowgrabError } from '../errors.js';
import { VERSION } from '../version.js';
import { positiveInt } from './args.js';
import { chainName, queueNum, queueRules } from './nfqueue.js';
import { errorStyle, logLine } from './output.js';
import { reportError } from './run.js';

/** --receive-linger, --flush-interval: milliseconds, fractions allowed, 0–100. */
function lingerMs(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n <= 100)) throw new InvalidArgumentError('a number of milliseconds, 0–100');
  return n;
}

const program = new Command('flowgrabd')
  .description('the flowgrab daemon: flow handles over a Unix socket, each client limited by the policy')
  .version(VERSION)
  .option('--socket <path>', 'Unix socket to listen on', '/run/flowgrab/flowgrab.sock')
  .requiredOption('--policy <file>', 'the policy file (JSON); SIGHUP reloads it')
  .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
  .option(
    '--metrics-allow-host <name...>',
    "further names scrapers reach the metrics by (besides addresses, localhost and this machine's name)",
  )
  .addOption(
    new Option(
      '--peer-identity <method>',
      'how clients are identified by the kernel: SO_PEERCRED, unix_diag, or the first that answers',
    )
      .choices(['auto', 'peercred', 'sockdiag'])
      .default('auto'),
  )
  .option('--queue <n>', 'own this NFQUEUE queue and share it among clients by packet mark', queueNum)
  .option('--queue-netns <name>', 'the queue is in this network namespace (ip netns)')
  .option('--queue-rule <chains...>', 'install jump rules to the queue from INPUT, OUTPUT and/or FORWARD', chainName)
  .option('--queue-match <args>', 'with --queue-rule: extra iptables match arguments, e.g. "-p tcp --dport 443"')
  .addOption(
    new Option('--queue-default <verdict>', 'verdict for unclaimed packets and missed timeouts')
      .choices(['accept', 'drop'])
      .default('accept'),
  )
  .option('--queue-timeout <ms>', 'how long a client has for each verdict', positiveInt('--queue-timeout'), 2000)
  .option(
    '--idle-timeout <ms>',
    'close a connection that holds nothing and sends nothing for this long',
    positiveInt('--idle-timeout'),
    300_000,
  )
  .option(
    '--frame-timeout <ms>',
    'close a connection that leaves a frame unfinished for this long',
    positiveInt('--frame-timeout'),
    10_000,
  )
  .option(
    '--flush-interval <ms>',
    'the shortest time between two writes to a client (0–100, default 1; 0: at the end of every event-loop turn)',
    lingerMs,
  )
  .option(
    '--receive-linger <ms>',
    'how long kernel events may gather before the daemon wakes for them (0–100, default 0.25; less: lower latency, more CPU)',
    lingerMs,
  )
  .action(async (o) => {
    const [{ Daemon }, { loadPolicy }, { serveMetrics }, { installGuard }] = await Promise.all([
      import('../daemon/server.js'),
      import('../auth/load.js'),
      import('../daemon/metrics.js'),
      import('../daemon/guard.js'),
    ]);
    // One client's failure closes that client (guard.ts); anything else is logged and the daemon goes on serving.
    installGuard(
      (err) => logLine('error', 'uncaught error', { error: (err as Error)?.stack ?? String(err) }),
      (client, err) => logLine('error', 'uncaught error in a client', { client, error: (err as Error)?.message }),
    );
    if ((o.queueNetns || o.queueRule || o.queueMatch) && o.queue === undefined)
      throw new InvalidArgumentError('--queue-netns, --queue-rule and --queue-match need --queue');
    if (o.queueMatch && !o.queueRule) throw new InvalidArgumentError('--queue-match needs --queue-rule');
    const d = new Daemon({
      socket: o.socket,
      policy: () => loadPolicy(o.policy),
      log: logLine,
      peerIdentity: o.peerIdentity,
      timeouts: { idleMs: o.idleTimeout, partialFrameMs: o.frameTimeout },
      receiveLingerMs: o.receiveLinger,
      flushMs: o.flushInterval,
      queue:
        o.queue === undefined
          ? undefined
          : {
              queue: o.queue,
              netns: o.queueNetns,
              defaultVerdict: o.queueDefault,
              verdictTimeoutMs: o.queueTimeout,
              // Both families, as the queue is IPv4 and IPv6.
              rules: queueRules(o.queueRule, o.queueMatch),
            },
    });
    // The metrics port first: a busy one is a start-up failure (exit 1), not a log line from a daemon left running.
    const metrics = o.metrics
      ? await serveMetrics(d, o.metrics, o.metricsAllowHost ?? []).catch((err: NodeJS.ErrnoException) => {
          // A malformed address says so itself; a socket error gets the address and the errno.
          if (err instanceof FlowgrabError) throw err;
          throw new InvalidArgumentError(`--metrics ${o.metrics}: cannot listen (${err.code ?? err.message})`);
        })
      : undefined;
    const stop = async (sig: string) => {
      logLine('info', 'stopping', { signal: sig });
      metrics?.close();
      await d.close(); // waits for a listen() still under way, then undoes it
      process.exit(0);
    };
    // Before listening: a SIGTERM as soon as the socket exists (a service manager, a test) stops it cleanly,
    // where it used to kill it with its socket and rules left behind.
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    try {
      await d.listen();
    } catch (err) {
      metrics?.close();
      await d.close().catch(() => {});
      throw err;
    }
    if (metrics) logLine('info', 'metrics', { url: `http://${o.metrics}/metrics` });
    process.on('SIGHUP', () => void d.reload());
  });

// Start-up failures read as flowgrab's do (`flowgrabd: error: …`); once running, the daemon logs (logfmt).
errorStyle(program, 'flowgrabd');

try {
  await program.parseAsync(process.argv);
} catch (err) {
  reportError(err, 'flowgrabd');
  // Whatever start-up left open (a half-started queue, timers) must not keep a failed daemon running.
  process.exit(1);
}
