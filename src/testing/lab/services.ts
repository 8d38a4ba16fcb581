import { run } from './exec.js';
import type { Lab } from './lab.js';
import type { Netns } from './netns.js';

/** The body the lab's HTTP server answers every request with. */
export const HTTP_BODY = 'hello from the flowgrab lab\n';

// One line per request is enough; `connection: close` so a plain socat client sees EOF.
const HTTP_SERVER_JS = `
const http = require('node:http');
const body = ${JSON.stringify(HTTP_BODY)};
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
});
server.listen({ port: Number(process.argv[1]), host: '::' });
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * Whether something in `ns` listens on `port` (optionally on one local address).
 * `ss -N` enters the namespace itself: no `ip netns exec` mount set-up per poll.
 */
export async function isListening(ns: Netns, proto: 'tcp' | 'udp', port: number, address?: string): Promise<boolean> {
  const { stdout } = await run(['ss', '-N', ns.name, '-H', '-l', '-n', proto === 'tcp' ? '-t' : '-u']);
  const want =
    address === undefined ? undefined : address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  return stdout.split('\n').some((line) => {
    const local = line.trim().split(/\s+/)[3];
    if (local === undefined) return false;
    return want === undefined ? local.endsWith(`:${port}`) : local === want;
  });
}

export interface ServerPorts {
  tcpPort: number;
  udpPort: number;
  httpPort: number;
}

/**
 * The WAN servers: TCP and UDP echo (socat, one child per connection or
 * datagram) and HTTP (node). All listen on `::` with v4-mapped addresses
 * allowed, so one socket serves IPv4 and IPv6.
 */
export async function startWanServers(lab: Lab, wan: Netns, ports: ServerPorts): Promise<void> {
  await Promise.all([
    lab.spawn(wan, ['socat', `TCP6-LISTEN:${ports.tcpPort},ipv6only=0,reuseaddr,fork`, 'PIPE'], {
      name: 'tcp-echo',
      ready: () => isListening(wan, 'tcp', ports.tcpPort),
    }),
    lab.spawn(wan, ['socat', `UDP6-RECVFROM:${ports.udpPort},ipv6only=0,reuseaddr,fork`, 'PIPE'], {
      name: 'udp-echo',
      ready: () => isListening(wan, 'udp', ports.udpPort),
    }),
    lab.spawn(wan, [process.execPath, '-e', HTTP_SERVER_JS, String(ports.httpPort)], {
      name: 'http',
      ready: () => isListening(wan, 'tcp', ports.httpPort),
    }),
  ]);
}

/** Starts dnsmasq and waits until it answers on every listen address (UDP and TCP 53). */
export async function startDnsmasq(lab: Lab, router: Netns, argv: string[], listen: string[]): Promise<void> {
  await lab.spawn(router, argv, {
    name: 'dnsmasq',
    ready: async () => {
      for (const addr of listen) {
        if (!(await isListening(router, 'udp', 53, addr)) || !(await isListening(router, 'tcp', 53, addr)))
          return false;
      }
      return true;
    },
  });
}
