/**
 * FlowTracker: records at DESTROY, active-timeout records with deltas from
 * periodic dumps, idle flows not reported again, and the shutdown flush —
 * with a property: whatever the interleaving, the deltas exported for a flow
 * add up to its final counters, and no record is empty after the first.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExportFlow } from '../../../src/export/flow.js';
import { FlowTracker, isConntrackRecord } from '../../../src/export/tracker.js';
import type { ConntrackRecord } from '../../../src/sources/conntrack/record.js';

const T0 = 1_700_000_000_000;

function rec(
  type: ConntrackRecord['type'],
  id: number,
  ts: number,
  c?: [number, number, number, number],
  extra: Partial<ConntrackRecord> = {},
): ConntrackRecord {
  const r: ConntrackRecord = {
    type,
    id,
    family: 'ipv4',
    proto: 'tcp',
    protonum: 6,
    orig: { src: '192.168.77.11', dst: '198.51.100.10', sport: 40000 + id, dport: 7007 },
    reply: { src: '198.51.100.10', dst: '198.51.100.1', sport: 7007, dport: 40000 + id },
    status: [],
    start: T0,
    ts,
    ...extra,
  };
  if (c) {
    r.orig = { ...r.orig, packets: c[0], bytes: c[1] };
    r.reply = { ...r.reply, packets: c[2], bytes: c[3] };
  }
  return r;
}

function tracker(activeTimeoutMs: number, pollIntervalMs = activeTimeoutMs) {
  const out: ExportFlow[] = [];
  const t = new FlowTracker({ activeTimeoutMs, pollIntervalMs, emit: (f) => out.push(f) });
  return { t, out };
}

describe('FlowTracker', () => {
  it('exports one record at DESTROY with the final counters, tuple, NAT side and TCP flags from the states seen', () => {
    const { t, out } = tracker(60_000);
    t.push(rec('new', 1, T0, undefined, { state: 'SYN_SENT' }));
    t.push(rec('destroy', 1, T0 + 5000, [10, 800, 8, 1200], { state: 'TIME_WAIT', stop: T0 + 4000 }));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      src: '192.168.77.11',
      dst: '198.51.100.10',
      sport: 40001,
      dport: 7007,
      rdst: '198.51.100.1',
      packets: 10,
      bytes: 800,
      rpackets: 8,
      rbytes: 1200,
      start: T0,
      end: T0 + 4000,
      reason: 'end',
      tcpFlags: 0x13,
      id: 1,
    });
    expect(t.size).toBe(0);
  });

  it('active timeout: a growing flow gets records with deltas from the dumps, then the rest at DESTROY', () => {
    const { t, out } = tracker(10_000);
    t.push(rec('new', 2, T0));
    t.push(rec('update', 2, T0 + 10_000, [5, 500, 4, 400]));
    t.push(rec('update', 2, T0 + 20_000, [9, 900, 7, 700]));
    t.push(rec('destroy', 2, T0 + 25_000, [12, 1200, 9, 900], { stop: T0 + 25_000 }));
    expect(out.map((f) => [f.reason, f.packets, f.bytes, f.rpackets, f.rbytes, f.start, f.end])).toEqual([
      ['active', 5, 500, 4, 400, T0, T0 + 10_000],
      ['active', 4, 400, 3, 300, T0 + 10_000, T0 + 20_000],
      ['end', 3, 300, 2, 200, T0 + 20_000, T0 + 25_000],
    ]);
  });

  it('idle: a flow that stopped moving is not reported again; its end is the last time it moved, not its expiry', () => {
    const { t, out } = tracker(10_000);
    t.push(rec('update', 3, T0 + 10_000, [5, 500, 0, 0]));
    t.push(rec('destroy', 3, T0 + 70_000, [5, 500, 0, 0], { stop: T0 + 70_000 }));
    expect(out).toHaveLength(1);
    expect(t.counts.skippedEmpty).toBe(1);
    const { t: t2, out: out2 } = tracker(0);
    t2.push(rec('update', 4, T0 + 10_000, [5, 500, 1, 10]));
    t2.push(rec('destroy', 4, T0 + 70_000, [5, 500, 1, 10], { stop: T0 + 70_000 }));
    expect(out2).toHaveLength(1);
    expect(out2[0]).toMatchObject({ reason: 'end', packets: 5, end: T0 + 10_000 });
  });

  it('shutdown flush exports every pending delta, with counters from a fresh dump, and empties the tracker', () => {
    const { t, out } = tracker(60_000);
    t.push(rec('update', 5, T0 + 1000, [1, 100, 1, 100]));
    t.push(rec('new', 6, T0 + 2000));
    t.push(rec('update', 7, T0 + 3000, [3, 300, 0, 0]));
    t.flush([rec('dump', 5, T0 + 9000, [4, 400, 2, 200]), rec('dump', 6, T0 + 9000, [2, 20, 2, 20])], T0 + 9000);
    const by = new Map(out.map((f) => [f.id, f]));
    expect(by.get(5)).toMatchObject({ reason: 'forced', packets: 4, rpackets: 2, end: T0 + 9000 });
    expect(by.get(6)).toMatchObject({ reason: 'forced', packets: 2, bytes: 20 });
    expect(by.get(7)).toMatchObject({ reason: 'forced', packets: 3, end: T0 + 3000 });
    expect(t.size).toBe(0);
  });

  it('a DESTROY of a flow never seen (no NEW followed, born between dumps) is one record with everything', () => {
    const { t, out } = tracker(60_000);
    t.push(rec('destroy', 9, T0 + 5000, [3, 180, 2, 120], { state: 'CLOSE', stop: T0 + 4000 }));
    expect(out).toEqual([
      expect.objectContaining({ id: 9, reason: 'end', packets: 3, bytes: 180, rpackets: 2, rbytes: 120 }),
    ]);
    expect(out[0]).toMatchObject({ start: T0, end: T0 + 4000, tcpFlags: 0x14 });
    expect(t.size).toBe(0);
    expect(t.counts).toMatchObject({ flows: 1, records: 1, ended: 1 });
  });

  it('shutdown with adopt: flows only the final dump knows go out whole, except those whose DESTROY came meanwhile', () => {
    const { t, out } = tracker(0);
    t.push(rec('update', 10, T0 + 1000, [1, 100, 0, 0]));
    t.closing();
    // Flow 11 ended while the final dump was being read: its DESTROY went out, the dump's stale copy must not.
    t.push(rec('destroy', 11, T0 + 2000, [2, 200, 1, 50], { stop: T0 + 2000 }));
    const dump = [
      rec('dump', 10, T0 + 3000, [4, 400, 0, 0]),
      rec('dump', 11, T0 + 1500, [2, 200, 1, 50]),
      rec('dump', 12, T0 + 3000, [5, 500, 5, 500]),
    ];
    t.flush(dump, T0 + 3000, true);
    expect(out.map((f) => [f.id, f.reason, f.packets, f.rpackets])).toEqual([
      [11, 'end', 2, 1],
      [10, 'forced', 4, 0],
      [12, 'forced', 5, 5],
    ]);
    // Without adopt (a filtered graph's stream), the dump only refreshes what is tracked.
    const { t: t2, out: out2 } = tracker(0);
    t2.push(rec('update', 10, T0 + 1000, [1, 100, 0, 0]));
    t2.flush(dump, T0 + 3000);
    expect(out2.map((f) => [f.id, f.packets])).toEqual([[10, 4]]);
  });

  it('counters zeroed by someone else count from zero again (never negative deltas)', () => {
    const { t, out } = tracker(1000);
    t.push(rec('update', 8, T0 + 1000, [10, 1000, 0, 0]));
    t.push(rec('update', 8, T0 + 2000, [2, 200, 0, 0]));
    expect(out.map((f) => f.packets)).toEqual([10, 2]);
  });

  it('property: per flow, exported deltas sum to the final counters; no negative or empty follow-up records', () => {
    const step = fc.record({
      id: fc.integer({ min: 1, max: 4 }),
      dt: fc.integer({ min: 0, max: 15_000 }),
      grow: fc.tuple(fc.nat(5), fc.nat(5)),
      kind: fc.constantFrom('update', 'update', 'update', 'new', 'destroy'),
    });
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 80 }),
        fc.constantFrom(0, 5000, 10_000),
        fc.boolean(),
        fc.boolean(),
        (steps, at, end, newEvents) => {
          const { t, out } = tracker(at, at || 1000);
          const live = new Map<number, [number, number, number, number]>();
          const finals = new Map<number, number[]>();
          let now = T0;
          for (const s of steps) {
            now += s.dt;
            const c = live.get(s.id) ?? [0, 0, 0, 0];
            const next: [number, number, number, number] = [
              c[0] + s.grow[0],
              c[1] + 60 * s.grow[0],
              c[2] + s.grow[1],
              c[3] + 40 * s.grow[1],
            ];
            if (s.kind === 'destroy') {
              if (!live.has(s.id)) continue;
              t.push(rec('destroy', s.id, now, next, { stop: now }));
              finals.set(
                s.id,
                [...(finals.get(s.id) ?? [0, 0, 0, 0])].map((x, i) => x + next[i]),
              );
              live.delete(s.id);
            } else if (s.kind === 'new') {
              if (live.has(s.id)) continue;
              live.set(s.id, [0, 0, 0, 0]);
              // The exporter follows NEW events only when the kernel does not timestamp flows.
              if (newEvents) t.push(rec('new', s.id, now));
            } else {
              live.set(s.id, next);
              t.push(rec('update', s.id, now, next));
            }
          }
          // Shutdown with a fresh dump, or with what the tracker last saw (the same counters here).
          t.closing();
          t.flush(end ? [...live].map(([id, c]) => rec('dump', id, now, c)) : [], now, !newEvents);
          for (const [id, c] of live)
            finals.set(
              id,
              [...(finals.get(id) ?? [0, 0, 0, 0])].map((x, i) => x + c[i]),
            );
          expect(t.size).toBe(0);
          const sums = new Map<number, number[]>();
          const seen = new Map<number, number>();
          for (const f of out) {
            const d = [f.packets, f.bytes, f.rpackets, f.rbytes];
            expect(d.every((x) => x >= 0)).toBe(true);
            expect(f.end).toBeGreaterThanOrEqual(f.start);
            if ((seen.get(f.id!) ?? 0) > 0 && f.reason !== 'end' && f.reason !== 'forced')
              expect(d.some((x) => x > 0)).toBe(true);
            seen.set(f.id!, (seen.get(f.id!) ?? 0) + 1);
            sums.set(
              f.id!,
              (sums.get(f.id!) ?? [0, 0, 0, 0]).map((x, i) => x + d[i]),
            );
          }
          for (const [id, c] of finals) expect(sums.get(id) ?? [0, 0, 0, 0]).toEqual(c);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('FlowTracker against records from any graph (nats, replay)', () => {
  it('takes only records of a conntrack shape it can read: the others go to the sink, which counts them', () => {
    expect(isConntrackRecord(rec('destroy', 7, T0, [1, 60, 1, 90]))).toBe(true);
    for (const bad of [
      { type: 'destroy', id: 7, ts: T0, family: 'ipv4', orig: null, reply: {} },
      { ...rec('new', 7, T0), reply: { src: 1, dst: '10.0.0.1' } },
      { ...rec('new', 7, T0), orig: { src: '10.0.0.1', dst: '10.0.0.2', packets: -1 } },
      { ...rec('new', 7, T0), ts: 'now' },
      { ...rec('new', 7, T0), start: Number.NaN },
    ])
      expect(isConntrackRecord(bad), JSON.stringify(bad)).toBe(false);
  });

  it('follows at most maxFlows: past it the one followed longest goes out as it stands', () => {
    const out: ExportFlow[] = [];
    const t = new FlowTracker({ activeTimeoutMs: 0, maxFlows: 100, emit: (f) => out.push(f) });
    for (let id = 1; id <= 1000; id++) t.push(rec('new', id, T0 + id, [1, 60, 0, 0]));
    expect(t.size).toBe(100);
    expect(t.counts.evicted).toBe(900);
    expect(out.map((f) => f.id)).toEqual([...Array(900).keys()].map((i) => i + 1));
    expect(out.every((f) => f.reason === 'forced')).toBe(true);
  });
});
