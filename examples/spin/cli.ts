/**
 * Command-line options of the SPIN example (main.ts runs it):
 * `npm run spin -- [--rpc-socket PATH] [--http PORT] [--mqtt URL|embedded|off] [--state DIR]
 *                  [--credentials FILE | --no-auth] [--allow-host NAME] [--allow-origin URL]
 *                  [--web-root DIR] [--monitor PREFIX] [--monitor-iface NAME] [--trusted-resolver ADDR]
 *                  [--daemon SOCKET] [--netns NAME] [period options]`
 *
 * The SPIN-compatible home-network monitor. SIGTERM / SIGINT stop it
 * cleanly (its firewall table is removed); after kill -9 the next start
 * replaces the stale table and enforces every stored list and block at once.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { SpinPeriods } from './domain/periods.js';
import type { MqttOptions } from './io/contract.js';

const int =
  (name: string, min = 0) =>
  (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };

/** Durations as `500ms`, `10s`, `5m`, `2h`, `14d` or plain milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`not a duration: ${JSON.stringify(v)} (like 500ms, 10s, 5m, 2h, 14d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Math.round(Number(m[1]) * unit);
}

export function mqttOption(v: string | undefined, host: string | undefined, rpc = false): MqttOptions | false {
  if (v === 'off' || v === 'none') return false;
  if (!v || v === 'embedded') return { broker: 'embedded', host };
  if (!/^(mqtts?|wss?|tcp):\/\//.test(v)) throw new InvalidArgumentError(`--mqtt: a broker URL, embedded or off`);
  return { broker: v, rpc };
}

export function buildCommand(): Command {
  return new Command('spin')
    .description('SPIN-compatible home-network monitor on flowgrab')
    .option('--rpc-socket <path>', 'JSON-RPC Unix socket (spind: /var/run/spin_rpc.sock)')
    .option('--http <port>', 'HTTP port for the web view and POST /spin_api/jsonrpc (0 = any)', int('--http'), 13026)
    .option('--http-host <addr>', 'HTTP listen address', '127.0.0.1')
    .option(
      '--credentials <file>',
      'login file for HTTP and MQTT RPC (default: <state>/credentials, made on first run)',
    )
    .option('--no-auth', 'no login at all: anyone who reaches the ports may change the blocks')
    .option('--allow-host <name...>', 'host names the web server is reached by (besides its address and localhost)')
    .option('--allow-origin <url...>', 'further origins allowed to call the RPC and open the MQTT WebSocket')
    .option('--monitor <prefix...>', 'watch only these prefixes (default: everything)')
    .option('--monitor-iface <name...>', "watch only the subnets of these router interfaces (e.g. a VLAN's)")
    .option('--web-root <dir>', "serve a spinweb static tree (SPIN's web app, *.gz too) at the RPC's origin")
    .option('--mqtt <url>', 'MQTT broker URL, "embedded" (1883 + WebSocket 1884) or "off"', 'embedded')
    .option(
      '--mqtt-rpc',
      'answer JSON-RPC on SPIN/jsonrpc/q of the --mqtt URL broker: only if its ACL lets only trusted clients publish there (anyone who may can change the blocks)',
    )
    .option('--state <dir>', 'state directory (SQLite store)', '/var/lib/flowgrab-spin')
    .option('--daemon <socket>', 'read the kernel through flowgrabd at this socket')
    .option('--netns <name>', 'watch this network namespace (the router) while serving from this one')
    .option('--names <file>', "names file in spind's names.conf form (name: <ip-or-mac> <name>)")
    .option('--leases <file>', 'dnsmasq lease file for DHCP names')
    .option('--ignore <addr...>', 'addresses ignored besides the router’s own')
    .option(
      '--trusted-resolver <addr...>',
      "DNS servers whose answers to devices asking them directly may fill name lists (the router's own always do)",
    )
    .option('--dns-group <n>', 'NFLOG group for DNS', int('--dns-group'), 53)
    .option('--local', 'publish traffic between non-devices too (spind -l)')
    .option('--dots', 'accept dots_signal')
    .option('--traffic-period <d>', 'conntrack poll and traffic publish', parseDuration)
    .option('--flow-period <d>', 'flow statistics / aging pass', parseDuration)
    .option('--flow-idle <d>', 'idle flows beyond --keep-flows go after this', parseDuration)
    .option('--keep-flows <n>', 'flows a device keeps however idle', int('--keep-flows'))
    .option('--flow-max-idle <d>', 'any flow idle this long goes', parseDuration)
    .option('--node-retain <d>', 'unreferenced nodes unseen this long expire', parseDuration)
    .option('--device-retain <d>', 'devices gone from the neighbour table expire after this', parseDuration)
    .option('--node-expiry-period <d>', 'how often node expiry runs', parseDuration);
}

export function periodsFrom(o: Record<string, unknown>): Partial<SpinPeriods> {
  const p: Partial<SpinPeriods> = {};
  const map: [string, keyof SpinPeriods][] = [
    ['trafficPeriod', 'trafficMs'],
    ['flowPeriod', 'flowStatsMs'],
    ['flowIdle', 'flowIdleMs'],
    ['keepFlows', 'keepFlows'],
    ['flowMaxIdle', 'flowMaxIdleMs'],
    ['nodeRetain', 'nodeRetainMs'],
    ['deviceRetain', 'deviceRetainMs'],
    ['nodeExpiryPeriod', 'nodeExpiryMs'],
  ];
  for (const [k, v] of map) if (o[k] !== undefined) p[v] = o[k] as number;
  return p;
}
