/**
 * `npm run spin -- [--rpc-socket PATH] [--http PORT] [--mqtt URL|embedded|off] [--state DIR]
 *                  [--daemon SOCKET] [--netns NAME] [period options]` (see cli.ts).
 * SIGTERM / SIGINT stop it cleanly: its firewall table is removed.
 */
import { buildCommand, mqttOption, periodsFrom } from './cli.js';

const logLine = (line: string) => process.stderr.write(`spin: ${line}\n`);

async function main(): Promise<void> {
  const cmd = buildCommand();
  cmd.parse(process.argv);
  const o = cmd.opts();
  if (process.getuid?.() !== 0 && !o.daemon)
    throw new Error('reading the kernel and enforcing blocks needs root (or --daemon SOCKET for reading)');
  const { startSpin } = await import('./app.js');
  const app = await startSpin({
    rpcSocket: o.rpcSocket,
    httpPort: o.http,
    httpHost: o.httpHost,
    mqtt: mqttOption(o.mqtt, undefined, o.mqttRpc === true),
    stateDir: o.state,
    daemon: o.daemon,
    netns: o.netns,
    namesFile: o.names,
    leaseFile: o.leases,
    ignore: o.ignore,
    dnsGroup: o.dnsGroup,
    local: o.local,
    dots: o.dots,
    periods: periodsFrom(o),
    log: logLine,
    // commander's --no-auth sets auth=false; --credentials FILE names the login file.
    credentialsFile: o.auth === false ? false : o.credentials,
    allowedHosts: o.allowHost,
    allowedOrigins: o.allowOrigin,
    webRoot: o.webRoot,
    monitorPrefixes: o.monitor,
    monitorInterfaces: o.monitorIface,
    trustedResolvers: o.trustedResolver,
  });
  process.stdout.write(
    `spin: web view ${app.httpUrl}/spin_graph/graph.html, JSON-RPC POST ${app.httpUrl}/spin_api/jsonrpc` +
      `${app.rpcSocket ? ` and ${app.rpcSocket}` : ''}${app.mqtt ? `, MQTT ${app.mqtt.url}` : ''}\n` +
      (o.auth === false
        ? 'spin: --no-auth: anyone who reaches these ports can change the blocks\n'
        : `spin: login from ${o.credentials ?? `${o.state}/credentials (user spin, password in ${o.state}/password)`}\n`),
  );
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    logLine(`${sig}: stopping`);
    app.close().then(
      () => process.exit(0),
      (err) => {
        logLine(`close: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  logLine(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
