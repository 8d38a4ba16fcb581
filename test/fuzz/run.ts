/**
 * `npm run fuzz [-- --cases N --seed S]` (FG_FUZZ_CASES, FG_FUZZ_SEED): mutates
 * golden captures and random inputs through every decoder (see targets.ts),
 * round-robin. Exits non-zero on an untyped error, a case taking over 100 ms
 * of CPU, or a fast/reference disagreement, printing the input to replay it.
 * Not part of `npm test`.
 */
import { writeSync } from 'node:fs';
import { prng, type Rand } from '../helpers/ct-tree.js';
import { FuzzFailure, type Target, targets } from './targets.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const CASES = Number(arg('cases') ?? process.env.FG_FUZZ_CASES ?? 1_000_000);
const SEED = Number(arg('seed') ?? process.env.FG_FUZZ_SEED ?? Date.now() % 2 ** 31);
const HANG_MS = 100;
const TRACE = process.env.FG_FUZZ_TRACE === '1';
if (!Number.isSafeInteger(CASES) || CASES < 1) throw new Error(`fuzz: bad case count ${CASES}`);

const int = (r: Rand, n: number) => Math.floor(r() * n);
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 4, 8, 12, 16, 0xc0];

/** One mutation of a seed (most often) or up to four, or fresh random bytes. */
function mutate(r: Rand, seeds: Buffer[]): Buffer {
  if (r() < 0.05 || seeds.length === 0) return Buffer.from(Array.from({ length: int(r, 128) }, () => int(r, 256)));
  let b = Buffer.from(seeds[int(r, seeds.length)]);
  for (let k = r() < 0.6 ? 1 : 2 + int(r, 3); k > 0; k--) {
    const at = b.length ? int(r, b.length) : 0;
    const roll = int(r, 7);
    if (roll === 0 && b.length) b[at] ^= 1 << int(r, 8);
    else if (roll === 1 && b.length) b[at] = INTERESTING[int(r, INTERESTING.length)];
    else if (roll === 2) b = b.subarray(0, at);
    else if (roll === 3 && b.length > 1) b.writeUInt16LE(int(r, 0x10000), Math.min(at, b.length - 2));
    else if (roll === 4)
      b = Buffer.concat([b.subarray(0, at), Buffer.from([int(r, 256), int(r, 256)]), b.subarray(at)]);
    else if (roll === 5) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 8)))]);
    else if (b.length) {
      const other = seeds[int(r, seeds.length)];
      b = Buffer.concat([b.subarray(0, at), other.subarray(int(r, other.length + 1))]);
    }
  }
  return b;
}

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

function fail(t: Target, i: number, b: Buffer, why: string): never {
  console.error(`fuzz: FAIL in ${t.name} at case ${i} (seed ${SEED}): ${why}\ninput: ${b.toString('hex')}`);
  process.exit(1);
}

const all = targets();
const counts = new Map(all.map((t) => [t.name, { cases: 0, refused: 0, slowestMs: 0 }]));
const r = prng(SEED);
const t0 = Date.now();
for (let i = 0; i < CASES; i++) {
  const t = all[i % all.length];
  const b = mutate(r, t.seeds);
  const c = counts.get(t.name)!;
  // A native crash (V8 fatal, OOM) kills the process before `fail` can print: FG_FUZZ_TRACE writes each input first.
  if (TRACE) writeSync(2, `${i} ${t.name} ${b.toString('hex')}\n`);
  const w0 = performance.now();
  const c0 = cpuMs();
  try {
    if (!t.run(b)) c.refused++;
  } catch (err) {
    if (err instanceof FuzzFailure) fail(t, i, b, err.message);
    if ((err as { code?: string }).code !== 'FG_ERR_DECODE')
      fail(t, i, b, `untyped error: ${(err as Error)?.stack ?? err}`);
    c.refused++;
  }
  // A slow case counts as a hang only if it burnt the CPU too: on a shared machine wall time alone lies.
  const wall = performance.now() - w0;
  const cpu = cpuMs() - c0;
  if (wall > HANG_MS && cpu > HANG_MS) fail(t, i, b, `took ${wall.toFixed(0)} ms (${cpu.toFixed(0)} ms CPU)`);
  c.cases++;
  if (cpu > c.slowestMs) c.slowestMs = cpu;
  if ((i + 1) % 200_000 === 0) console.log(`fuzz: ${i + 1} cases, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
console.log(`fuzz: ${CASES} cases passed in ${((Date.now() - t0) / 1000).toFixed(0)} s (seed ${SEED})`);
for (const [name, c] of counts) {
  console.log(
    `  ${name.padEnd(28)} ${String(c.cases).padStart(8)} cases, ${String(c.refused).padStart(8)} refused (DecodeError), slowest ${c.slowestMs.toFixed(1)} ms CPU`,
  );
}
