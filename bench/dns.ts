/**
 * DNS source benchmark: a generator sends queries to a dnsmasq resolver in
 * a router namespace for 10 s; flowgrab's dns() source follows them there.
 * Reports records/s delivered, loss counted by the kernel's NFLOG sequence
 * numbers, and CPU per 1 000 queries (each query + response = 2 records).
 */
import { spawn } from 'node:child_process';
import { dns } from '../src/sources/dns/source.js';
import { sourcesTornDown } from '../src/sources/teardown.js';
import { floodDns } from '../src/testing/flood.js';
import { Lab } from '../src/testing/lab/lab.js';
import { waitFor } from '../src/testing/lab/netns.js';
import { fmt } from './lib.js';

const SECONDS = Number(process.env.FG_BENCH_DNS_SECONDS ?? 10);

async function round(lab: Lab, rtr: string, cli: string, rate: number): Promise<boolean> {
  let records = 0;
  let lost = 0;
  const sub = dns({
    netns: rtr,
    hooks: ['input', 'output'],
    notices: { next: (n) => n.kind === 'loss' && (lost += n.count ?? 0) },
  }).subscribe(() => records++);
  await new Promise((r) => setTimeout(r, 500));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const g = await floodDns(cli, { server: '10.77.0.1', name: 'bench.test', count: rate * SECONDS, rate });
  await waitFor(() => records + lost >= 2 * g.received, { timeoutMs: 3000 }).catch(() => {});
  const cpu = process.cpuUsage(cpu0);
  const secs = (Date.now() - t0) / 1000;
  sub.unsubscribe();
  await sourcesTornDown();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(
    `  ${rate}/s asked (${fmt(g.sent / g.seconds, 0)}/s sent, ${g.received} answered): ${records} records (${fmt(records / secs, 0)}/s), loss counted ${lost}, ` +
      `CPU ${fmt((cpuMs / g.sent) * 1000, 1)} ms per 1 000 queries (${fmt(cpuMs / 10 / secs, 1)} % of a core)`,
  );
  void lab;
  return lost === 0 && records >= 2 * g.received;
}

export async function benchDns(): Promise<void> {
  const lab = new Lab();
  try {
    const [rtr, cli] = await Promise.all([lab.netns('r'), lab.netns('c')]);
    await lab.veth(rtr, 'fgbr0', cli, 'fgbc0');
    await rtr.ipBatch(['addr add 10.77.0.1/24 dev fgbr0', 'link set fgbr0 up', 'link set lo up']);
    await cli.ipBatch(['addr add 10.77.0.2/24 dev fgbc0', 'link set fgbc0 up', 'link set lo up']);
    const resolver = spawn(
      'ip',
      [
        'netns',
        'exec',
        rtr.name,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        '--user=root',
        '--bind-interfaces',
        '--listen-address=10.77.0.1',
        '--host-record=bench.test,10.77.0.99',
        '--pid-file=',
        '--log-facility=/dev/null',
        '--dns-forward-max=10000',
      ],
      { stdio: 'ignore' },
    );
    lab.defer(() => {
      resolver.kill();
    });
    await new Promise((r) => setTimeout(r, 500));
    console.log(`DNS: queries to dnsmasq in a router namespace for ${SECONDS} s, dns() following input+output there`);
    for (const rate of [20_000, 10_000, 5_000]) {
      if (await round(lab, rtr.name, cli.name, rate)) break;
    }
  } finally {
    await lab.close();
  }
}
