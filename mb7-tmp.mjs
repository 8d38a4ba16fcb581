import { Observable, lastValueFrom, reduce } from 'rxjs';
import { z } from 'zod';
import { registerSource } from './dist/src/filters/registry.js';
import { RECORD_FIELDS } from './dist/src/filters/sources.js';
import { Flowgrab } from './dist/src/flow/flowgrab.js';
import { procCpuMs } from './dist/bench/lib.js';
const N = 1_000_000;
function records() {
  const protos = ['tcp', 'tcp', 'udp', 'tcp'];
  const ports = [80, 443, 22, 443, 8080];
  return Array.from({ length: N }, (_, i) => ({
    type: 'update', id: i % 20_000, family: 'ipv4', proto: protos[i & 3], protonum: 6,
    orig: { src: `10.0.${(i >> 8) & 63}.${i & 255}`, dst: `198.51.100.${i % 50}`, sport: 30000 + (i % 20000), dport: ports[i % 5], packets: i & 15, bytes: i & 1023 },
    reply: { src: `198.51.100.${i % 50}`, dst: `10.0.${(i >> 8) & 63}.${i & 255}`, sport: ports[i % 5], dport: 30000 + (i % 20000) },
    status: ['ASSURED'], ts: i,
  }));
}
const recs = records();
const go = new Map();
registerSource({ name: 'benchrecords', description: 'x', params: z.object({ run: z.string() }).strict(), fields: RECORD_FIELDS.conntrack,
  create: (p) => new Observable((sub) => { go.set(p.run, () => { for (let i = 0; i < recs.length; i++) sub.next(recs[i]); sub.complete(); }); return () => go.delete(p.run); }) });
async function run(tail) {
  const fg = new Flowgrab();
  const feed = `b${Math.random()}`;
  const f = fg.create({ bufferRecords: 1_000_000 });
  f.populate(`benchrecords(run="${feed}") -> ${tail}`);
  await f.instantiate(); await f.activate();
  const out = lastValueFrom(f.records$.pipe(reduce((n) => n + 1, 0)));
  const t0 = procCpuMs();
  go.get(feed)();
  const n = await out;
  const ms = procCpuMs() - t0;
  await fg.close();
  return [ms, n];
}
const tails = (process.env.TAILS ?? '').split(';');
const res = tails.map(() => []);
for (let k = 0; k < 7; k++) for (const [i, t] of tails.entries()) res[i].push((await run(t))[0]);
for (const [i, t] of tails.entries()) { const s = res[i].sort((a,b)=>a-b); console.log(String(s[3]).padStart(5), 'ms', t); }
console.log('time in ids.get', globalThis.__tt?.toFixed(1), 'calls', globalThis.__c);
console.log('slow', globalThis.__slow)
console.log('fallbacks', globalThis.__fb)
