/**
 * Traffic generator for the benchmarks, run inside a bench netns:
 *   node dist/bench/gen-udp.js COUNT RATE BASE
 * sends one UDP datagram to each of COUNT distinct loopback addresses
 * 127.BASE+.x.y port 9 (each a new conntrack entry), paced at RATE per
 * second (0 = flat out), then prints the elapsed seconds.
 */
import { createSocket } from 'node:dgram';

const [count, rate, base] = process.argv.slice(2).map(Number);
const sock = createSocket('udp4');
const payload = Buffer.from('x');
const start = process.hrtime.bigint();
let sent = 0;

/** The i-th distinct address: host bytes 1..254 so none is a network or broadcast address. */
function addr(i: number): string {
  const y = (i % 254) + 1;
  const x = Math.floor(i / 254) % 256;
  return `127.${base + Math.floor(i / (254 * 256))}.${x}.${y}`;
}

async function run(): Promise<void> {
  const batch = 500;
  while (sent < count) {
    const n = Math.min(batch, count - sent);
    await Promise.all(
      Array.from(
        { length: n },
        (_, k) => new Promise<void>((res) => sock.send(payload, 9, addr(sent + k), () => res())),
      ),
    );
    sent += n;
    if (rate > 0) {
      const due = Number(process.hrtime.bigint() - start) / 1e9;
      const want = sent / rate;
      if (want > due) await new Promise((r) => setTimeout(r, (want - due) * 1000));
    }
  }
  sock.close();
  process.stdout.write(`${(Number(process.hrtime.bigint() - start) / 1e9).toFixed(3)}\n`);
}

await run();
