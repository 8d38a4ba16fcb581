import { BenchNetns } from './dist/bench/lib.js';
import { processCpu, total } from './dist/bench/conntrack-proc.js';
import { conntrack } from './dist/src/sources/conntrack/source.js';
const ns = new BenchNetns();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let base = 10;
async function round(label) {
  let got = 0;
  const sub = conntrack({ events: ['new'], netns: ns.name }).subscribe(() => got++);
  await sleep(200);
  let c0 = processCpu('self');
  await ns.generate(20000, 10000, base++, () => { c0 = processCpu('self'); });
  const t = Date.now(); while (got < 20000 && Date.now() - t < 3000) await sleep(20);
  const cpu = total(processCpu('self')) - total(c0);
  sub.unsubscribe();
  ns.exec(['conntrack', '-F']);
  console.log(label, got, (cpu * 1000 / got).toFixed(2), 'µs/event');
}
try {
  const idle = Number(process.env.IDLE ?? 6000);
  for (let i = 0; i < 4; i++) { await round('back-to-back'); }
  for (let i = 0; i < 4; i++) { if (process.env.BUSY) { const e = Date.now() + idle; let x = 0; while (Date.now() < e) x++; await sleep(1); } else await sleep(idle); await round(`after ${idle} ms idle`); }
} finally { ns.close(); }
process.exit(0);
