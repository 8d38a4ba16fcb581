/**
 * Live top talkers with names from DNS: the destinations that moved the most
 * bytes, every 5 seconds, named by the DNS answers the kernel saw.
 *
 *   node dist/examples/conntrack-top.js [NETNS] [--seconds N]
 */
import { DnsCache, Flowgrab, graph } from 'flowgrab';

const netns = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : undefined;
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 0);
const where = netns ? { netns } : {};

const fg = new Flowgrab();
const names = new DnsCache();

// Flow 1: every DNS answer feeds the cache. NFLOG group 54: one reader per group, so
// this example can run next to another DNS reader (which takes 53 by default).
const dnsFlow = fg
  .create({ name: 'names' })
  .populate(graph.source('dns', { group: 54, ...where }).match('kind == response && rcode == NOERROR'));
await dnsFlow.instantiate();
dnsFlow.records$.subscribe((r) => names.add(r));
await dnsFlow.activate();

// Flow 2: finished connections (with their byte counters), top 5 destinations by bytes per 5 s.
const top = fg
  .create({ name: 'top' })
  .populate(
    graph
      .source('conntrack', { events: ['destroy'], ...where })
      .top({ by: 'orig.dst', field: 'orig.bytes', n: 5, every: '5s' }),
  );
await top.instantiate();
top.records$.subscribe((r) => {
  console.log(`top talkers ${new Date(r.end).toLocaleTimeString()}`);
  for (const i of r.items)
    console.log(
      `  ${i.orig.dst.padEnd(20)} ${String(i.sum).padStart(10)} bytes  ${i.count} flows  ${names.names(i.orig.dst).join(', ')}`,
    );
});
await top.activate();

const stop = () => void fg.close();
process.once('SIGINT', stop);
if (seconds > 0) setTimeout(stop, seconds * 1000);
