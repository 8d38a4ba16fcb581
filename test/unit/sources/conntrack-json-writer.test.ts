import { describe, expect, it } from 'vitest';
import { conntrackToJson } from '../../../src/sources/conntrack/json.js';
import { ConntrackJsonWriter } from '../../../src/sources/conntrack/json-writer.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';

const base: ConntrackRecord = {
  type: 'dump',
  id: 3_912_345_678,
  family: 'ipv4',
  proto: 'udp',
  protonum: 17,
  orig: { src: '10.0.0.2', dst: '10.0.0.9', sport: 40000, dport: 53, packets: 1, bytes: 61 },
  reply: { src: '10.0.0.9', dst: '10.0.0.2', sport: 53, dport: 40000, packets: 0, bytes: 0 },
  status: Object.freeze(['CONFIRMED']) as string[],
  timeout: 29,
  start: 1_795_433_474_054,
  ts: 1_795_433_475_001,
};

const variants: ConntrackRecord[] = [
  base,
  { ...base, type: 'new', orig: { src: '::1', dst: 'fe80::1:2', sport: 0, dport: 9 }, family: 'ipv6', status: [] },
  {
    ...base,
    proto: 'icmp',
    protonum: 1,
    orig: { src: '1.2.3.4', dst: '5.6.7.8', icmp: { type: 8, code: 0, id: 65535 } },
    reply: { src: '5.6.7.8', dst: '1.2.3.4', icmp: { type: 0, code: 0, id: 65535 } },
    state: 'ESTABLISHED',
    mark: 0xffffffff,
    zone: 7,
    stop: 1_795_433_475_000.5,
    helper: 'ftp"\\\n\u00e9\u{1f600}',
    labels: '0x1',
    delta: { orig: { packets: 5, bytes: 500 }, reply: { packets: 0, bytes: 0 } },
    resync: true,
    netns: 'lab-1',
    ts: 0,
  },
  { ...base, id: 0, timeout: 9, start: -1, ts: Number.MAX_SAFE_INTEGER + 2 },
  // Saturated counters and a tuple's own zone belong to the end they describe.
  { ...base, type: 'update', orig: { ...base.orig, packets: Number.MAX_SAFE_INTEGER, saturated: true, zone: 3 } },
  { ...base, type: 'destroy', family: 'ipv6', reply: { ...base.reply, zone: 0 } },
];

function written(recs: ConntrackRecord[], sinkIsSync = false): string {
  const parts: Buffer[] = [];
  const sink = { write: (b: Uint8Array) => parts.push(Buffer.from(b)) };
  if (sinkIsSync) Object.defineProperty(sink, 'constructor', { value: { name: 'SyncWriteStream' } });
  const w = new ConntrackJsonWriter(sink);
  for (const r of recs) w.record(r);
  w.flush();
  return Buffer.concat(parts).toString('utf8');
}

describe('ConntrackJsonWriter', () => {
  it('writes exactly what conntrackToJson does, one line per record', () => {
    expect(written(variants)).toBe(variants.map((r) => `${conntrackToJson(r)}\n`).join(''));
    for (const line of written(variants).trimEnd().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('fills and flushes its buffer over many records, to sync and async sinks alike', () => {
    const many = Array.from({ length: 9000 }, (_, i) => ({ ...base, id: i, ts: base.ts + i }));
    const want = many.map((r) => `${conntrackToJson(r)}\n`).join('');
    expect(written(many)).toBe(want);
    expect(written(many, true)).toBe(want);
  });

  it('copes with a string longer than its whole buffer', () => {
    const huge = { ...base, helper: 'x'.repeat(3 << 20), labels: '\u00e9'.repeat(1 << 20) };
    expect(written([base, huge, base])).toBe([base, huge, base].map((r) => `${conntrackToJson(r)}\n`).join(''));
  });
});
