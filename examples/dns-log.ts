/**
 * A DNS log: who asked for what, what came back, how long it took.
 *
 *   node dist/examples/dns-log.js [NETNS] [--seconds N]
 */
import { Flowgrab, graph } from 'flowgrab';

const netns = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : undefined;
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 0);

const fg = new Flowgrab();
// Built in code, the graph carries its record type: r below is typed, no casts.
const flow = fg.create({ name: 'dns-log' }).populate(
  graph
    .source('dns', netns ? { netns } : {})
    .match('kind == response')
    .project('client', 'qname', 'qtype', 'rcode', 'resolved', 'rtt'),
);
await flow.instantiate();
flow.records$.subscribe((r) => {
  const ips = r.resolved.map((x) => x.ip).join(' ') || '-';
  const rtt = typeof r.rtt === 'number' ? `${r.rtt.toFixed(1)} ms` : '';
  console.log(`${r.client} ${r.qname} ${r.qtype} ${r.rcode} ${ips} ${rtt}`);
});
flow.lost$.subscribe((n) => console.error(`lost ${n.count}: ${n.message}`));
await flow.activate();

const stop = () => void fg.close();
process.once('SIGINT', stop);
if (seconds > 0) setTimeout(stop, seconds * 1000);
