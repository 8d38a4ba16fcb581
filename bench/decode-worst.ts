/**
 * `npm run bench -- decode-worst` (issue 14): what the worst packet a
 * stranger can send costs, against a normal one.
 *  - DNS: decode cost per packet of hostile payloads / a normal response (goal ≤ 10×).
 *  - TCP reassembly: n one-byte segments in ascending, descending and random
 *    order for n = 1k … 64k; the ratio t(4n)/t(n) is ~4 for n log n, 16 for n².
 *  - Memory per pending segment: accounted and measured (heap + buffers).
 * No root, no namespaces: pure decoding.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as dnsPacket from 'dns-packet';
import { decodeDns, dnsFields } from '../src/sources/dns/message.js';
import { TcpReassembler } from '../src/sources/dns/tcp.js';
import { fmt } from './lib.js';

/** CPU time, not wall time: other processes on the shared machine must not count. */
const cpuNs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) * 1000;
};

/** CPU ns per call of `f`: the best of 7 rounds after a warm-up (the machine is shared; the minimum is the least disturbed). */
function nsPer(f: () => void, budgetMs = 140): number {
  const round = (ms: number) => {
    let n = 0;
    const t0 = cpuNs();
    let t = t0;
    while (t - t0 < ms * 1e6) {
      for (let i = 0; i < 8; i++) f();
      n += 8;
      t = cpuNs();
    }
    return (t - t0) / n;
  };
  round(budgetMs / 4);
  return Math.min(...Array.from({ length: 7 }, () => round(budgetMs / 7)));
}

/** What the DNS feed does with a payload: decode, or fail with a reason code. */
function feedDecode(b: Buffer): void {
  try {
    dnsFields(decodeDns(b));
  } catch {
    // a record with `error` set
  }
}

const normal = dnsPacket.encode({
  type: 'response',
  id: 1,
  flags: 0x8180,
  questions: [{ name: 'www.example.com', type: 'A' }],
  answers: [
    { name: 'www.example.com', type: 'CNAME', ttl: 60, data: 'cdn.example.net' },
    { name: 'cdn.example.net', type: 'A', ttl: 60, data: '192.0.2.1' },
    { name: 'cdn.example.net', type: 'A', ttl: 60, data: '192.0.2.2' },
  ],
});

/** `size` bytes of records whose names all point at one `labels`-label name: the most name work per byte. */
function pointerHeavy(size: number, labels = 127): Buffer {
  const longName = Buffer.concat([
    Buffer.from(Array.from({ length: labels }, () => [1, 0x61]).flat()),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 4);
  const q = Buffer.concat([longName, Buffer.from([0, 1, 0, 1])]);
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
  const n = Math.floor((size - 12 - q.length) / rr.length);
  head.writeUInt16BE(n, 6);
  return Buffer.concat([head, q, ...Array.from({ length: n }, () => rr)]);
}

/** A normal, large response: `size` bytes of A records for one compressed name. */
function manyA(size: number): Buffer {
  const answers: dnsPacket.Answer[] = [];
  for (
    let i = 0;
    dnsPacket.encodingLength({ questions: [{ name: 'a.example.com', type: 'A' }], answers }) + 16 < size;
    i++
  )
    answers.push({ name: 'a.example.com', type: 'A', ttl: 5, data: `10.0.${(i >> 8) & 255}.${i & 255}` });
  return dnsPacket.encode({ type: 'response', id: 2, questions: [{ name: 'a.example.com', type: 'A' }], answers });
}

function benchDnsWorst(): void {
  const base = nsPer(() => feedDecode(normal));
  console.log(`decode-worst dns: normal response (${normal.length} B) ${fmt(base / 1000, 2)} µs/packet`);
  const cases: Array<[string, Buffer]> = [
    ['issue 14 TXT/count packet (23 B)', Buffer.from('0a0081800000ffffffffff0000001000010000003cffff', 'hex')],
    ['all counts 0xffff (12 B)', Buffer.from('12348180ffffffffffffffff', 'hex')],
    ['normal A records, 1500 B (MTU)', manyA(1500)],
    ['127-label pointers, 1500 B (refused)', pointerHeavy(1500)],
    ['14-label pointers, 1500 B (at budget)', pointerHeavy(1500, 14)],
    ['normal A records, 65 535 B (TCP)', manyA(65535)],
    ['127-label pointers, 65 535 B (refused)', pointerHeavy(65535)],
    ['14-label pointers, 65 535 B (at budget)', pointerHeavy(65535, 14)],
  ];
  const sameSize = new Map<number, number>();
  for (const [what, b] of cases) {
    const ns = nsPer(() => feedDecode(b));
    if (what.startsWith('normal')) sameSize.set(b.length, ns);
    const alike = [...sameSize].find(([len]) => Math.abs(len - b.length) < 64);
    const vsSame = alike && !what.startsWith('normal') ? `  ${fmt(ns / alike[1], 1)}× a normal one of its size` : '';
    console.log(
      `  ${what.padEnd(40)} ${fmt(ns / 1000, 2).padStart(9)} µs  ${fmt(ns / base, 1).padStart(6)}× normal${vsSame}`,
    );
  }
}

function shuffle(a: number[]): number[] {
  let s = 12345;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** ms to reassemble n one-byte segments fed in `order` (a SYN first). */
function reassemble(n: number, order: 'ascending' | 'descending' | 'random'): number {
  const t = new TcpReassembler({ maxStreamBytes: 1 << 20 });
  const data = Buffer.alloc(n, 0xff); // length prefix 0xffff: nothing completes, all bytes stay in the window
  const idx = Array.from({ length: n }, (_, i) => i);
  if (order === 'descending') idx.reverse();
  if (order === 'random') shuffle(idx);
  t.push({ key: 'k', seq: 0, flags: 0x02, data: Buffer.alloc(0), now: 0 });
  const t0 = cpuNs();
  for (const i of idx) t.push({ key: 'k', seq: 1 + i, flags: 0x18, data: data.subarray(i, i + 1), now: 0 });
  return (cpuNs() - t0) / 1e6;
}

function benchTcp(): void {
  console.log('decode-worst tcp: n one-byte segments (ms; ratio to n/4: ~4 for n log n, 16 for n²)');
  for (const order of ['ascending', 'descending', 'random'] as const) {
    reassemble(16000, order); // warm-up
    let prev = 0;
    const cells: string[] = [];
    for (const n of [1000, 4000, 16000, 64000]) {
      const ms = Math.min(...Array.from({ length: 5 }, () => reassemble(n, order)));
      cells.push(`${n / 1000}k ${fmt(ms, 2)}${prev ? ` (${fmt(ms / prev, 1)}×)` : ''}`);
      prev = ms;
    }
    console.log(`  ${order.padEnd(10)} ${cells.join('  ')}`);
  }
  // Memory: n - 1 pending segments (descending, the first byte missing), many streams at once.
  const n = 16000;
  const streams = 8;
  const gc = runInNewContext('gc') as () => void;
  // Windows and flags live in ArrayBuffers (stable to measure); the heap part (stream objects) is small and
  // noisy after the DNS bench's garbage, so it is counted only when it grew.
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed, buffers: m.arrayBuffers };
  };
  const t = new TcpReassembler({ maxStreamBytes: 1 << 20, maxTotalBytes: 1 << 30 });
  const data = Buffer.alloc(n, 1);
  const m0 = used();
  for (let s = 0; s < streams; s++) {
    t.push({ key: `s${s}`, seq: 0, flags: 0x02, data: Buffer.alloc(0), now: 0 });
    for (let i = n - 1; i >= 1; i--)
      t.push({ key: `s${s}`, seq: 1 + i, flags: 0x18, data: data.subarray(i, i + 1), now: 0 });
  }
  const m1 = used();
  const measured = (m1.buffers - m0.buffers + Math.max(0, m1.heap - m0.heap)) / (streams * (n - 1));
  if (t.size !== streams) throw new Error('bench: streams were evicted');
  const accounted = t.stats().bytes / (streams * (n - 1));
  console.log(
    `decode-worst tcp memory: ${fmt(accounted, 2)} B accounted, ~${fmt(measured, 2)} B measured per pending 1-byte segment (window + presence flag; was 84-138 B, counted as 1)`,
  );
}

export async function benchDecodeWorst(): Promise<void> {
  setFlagsFromString('--expose-gc'); // for the memory figure
  benchDnsWorst();
  benchTcp();
}
