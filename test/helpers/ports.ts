/**
 * Free loopback ports for servers a test starts later (a collector, a broker, a NATS node). They are drawn below
 * the kernel's ephemeral range (net.ipv4.ip_local_port_range), so that no outgoing connection or unbound UDP
 * socket takes one as its own port meanwhile: a port from that range was taken so once in CI, and the test's later
 * listen failed with EADDRINUSE. Each is checked free by binding it.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where to draw from: [from, to], or undefined to let the kernel choose (a range starting too low). */
function range(): [number, number] | undefined {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  return low > 11_000 ? [10_000, low - 1] : undefined;
}

/** Binds `bind(port)` on ports drawn from range() until one is free (after 100 tries, one the kernel picks). */
async function drawn(bind: (port: number) => Promise<number | undefined>): Promise<number> {
  const r = range();
  for (let tries = 0; ; tries++) {
    const want = !r || tries >= 100 ? 0 : r[0] + Math.floor(Math.random() * (r[1] - r[0] + 1));
    const got = await bind(want);
    if (got !== undefined) return got;
  }
}

export function freeTcpPort(): Promise<number> {
  return drawn(async (want) => {
    const s = createServer();
    const port = await new Promise<number | undefined>((resolve) => {
      s.once('error', () => resolve(undefined));
      s.listen(want, '127.0.0.1', () => resolve((s.address() as { port: number }).port));
    });
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  });
}

export function freeUdpPort(): Promise<number> {
  return drawn(async (want) => {
    const s = createSocket('udp4');
    const port = await new Promise<number | undefined>((resolve) => {
      s.once('error', () => resolve(undefined));
      s.bind(want, '127.0.0.1', () => resolve(s.address().port));
    });
    await new Promise<void>((r) => {
      try {
        s.close(() => r());
      } catch {
        r(); // never bound
      }
    });
    return port;
  });
}
