/**
 * `npm run demo`: a simulated home network in namespaces (router with
 * dnsmasq and NAT, three LAN clients, a WAN server), traffic between them,
 * and flowgrab following the router's connection tracking live. Everything
 * is removed at the end, or on Ctrl-C.
 *
 *   npm run demo -- [--seconds N]
 */
import { type ConntrackRecord, conntrack, type SourceNotice } from '../src/index.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork } from '../src/testing/index.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 12);

function namer(home: HomeNetwork): (ip: string) => string {
  const names = new Map<string, string>();
  for (const c of home.clients) {
    names.set(c.ipv4, c.name);
    names.set(c.ipv6, c.name);
  }
  names.set(home.server.ipv4, 'server.wan.test');
  names.set(home.server.ipv6, 'server.wan.test');
  names.set(home.routerLan.ipv4, 'router');
  names.set(home.routerLan.ipv6, 'router');
  return (ip) => names.get(ip) ?? ip;
}

function line(r: ConntrackRecord, name: (ip: string) => string): string {
  const port = r.orig.icmp ? `icmp type ${r.orig.icmp.type}` : `${r.proto}/${r.orig.dport}`;
  const counters =
    r.orig.packets === undefined
      ? ''
      : `  ${r.orig.packets}↑ ${r.reply.packets ?? 0}↓ pkts, ${r.orig.bytes}↑ ${r.reply.bytes ?? 0}↓ bytes`;
  const state = r.state ? ` ${r.state}` : '';
  return `${r.type.padEnd(7)} ${r.family} ${name(r.orig.src).padEnd(15)} → ${name(r.orig.dst).padEnd(16)} ${port}${state}${counters}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('the demo builds network namespaces: run it as root (sudo npm run demo)');
  process.stdout.write('flowgrab demo: building a home network in network namespaces…\n');
  const home = await createHomeNetwork();
  const stop = async () => {
    sub.unsubscribe();
    await home.close();
  };
  const onSignal = () => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const name = namer(home);
  process.stdout.write(
    `router ${home.router.name}, clients ${home.clients.map((c) => `${c.name} ${c.ipv4}`).join(', ')}, server ${home.server.ipv4}\n` +
      `following conntrack in ${home.router.name} for ${seconds} s (dump, then new/update/destroy events)\n\n`,
  );
  const notices: SourceNotice[] = [];
  let records = 0;
  const sub = conntrack({
    netns: home.router.name,
    dump: true,
    events: ['new', 'update', 'destroy'],
    notices: { next: (n) => notices.push(n) },
  }).subscribe((r) => {
    records++;
    process.stdout.write(`${line(r, name)}\n`);
  });

  const until = Date.now() + seconds * 1000;
  let rounds = 0;
  while (Date.now() < until) {
    await generateTraffic(home, { rounds: 1 });
    rounds++;
  }
  // End every flow so their DESTROY events (with final counters) show too.
  await home.router.exec(['conntrack', '-F'], { allowFail: true });
  await new Promise((r) => setTimeout(r, 500));
  await stop();
  process.stdout.write(
    `\n${records} records from ${rounds} rounds of traffic; ${notices.filter((n) => n.kind === 'loss').length} loss notices. ` +
      'Namespaces removed.\nTry the CLI: sudo npm run lab -- up, then node dist/src/cli/flowgrab.js conntrack --netns fglab-router --json\n',
  );
}

main().catch((err) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
