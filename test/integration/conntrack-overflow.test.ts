/**
 * Event loss against the real kernel: a 4 KiB receive buffer and a blocked
 * event loop while 20 000 flows start (and, later, end) in a namespace. The
 * source must say so (a 'loss' notice from the kernel's drop counter), resync
 * by dumping, and leave a subscriber who keeps a table from its records
 * (add on dump/new, remove on destroy) with exactly the kernel's table.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { deleteConntrack } from '../../src/sources/conntrack/delete.js';
import type { ConntrackRecord } from '../../src/sources/conntrack/record.js';
import { conntrack } from '../../src/sources/conntrack/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns, kernelIds } from '../helpers/conntrack-cli.js';
import { fileLab } from '../helpers/lab.js';

const FLOWS = 20_000;
let ns: Netns;

fileLab(async (lab) => {
  // The flood's flows must outlive the test (conntrackNetns: unreplied UDP lives 120 s, not the default 30 s).
  ns = await conntrackNetns(lab, 'flood', {
    'net.netfilter.nf_conntrack_acct': 1,
    'net.netfilter.nf_conntrack_timestamp': 1,
    'net.netfilter.nf_conntrack_events': 1,
  });
});

const sorted = (ids: Iterable<number>) => [...ids].sort((a, b) => a - b);
/** An entry's identity: conntrack ids are 32-bit hashes and collide (a few times per 20 000), so with the tuple. */
const keyOf = (r: ConntrackRecord) => `${r.id} ${r.proto} ${r.orig.src}:${r.orig.sport} ${r.orig.dst}:${r.orig.dport}`;
/** The ids the subscriber's table holds, a shared id as often as entries have it (as `conntrack -L` lists them). */
const tableIds = (table: Map<string, ConntrackRecord>) => sorted([...table.values()].map((r) => r.id));

/** Waits (bounded) until the subscriber's table holds exactly the kernel's ids; returns the kernel's. */
async function converge(table: Map<string, ConntrackRecord>, what: string, notices: SourceNotice[]): Promise<number[]> {
  let kernel: number[] = [];
  let mine: number[] = [];
  try {
    await waitFor(
      async () => {
        kernel = await kernelIds(ns.name);
        mine = tableIds(table);
        return JSON.stringify(kernel) === JSON.stringify(mine);
      },
      { timeoutMs: 15_000, intervalMs: 250, what },
    );
  } catch (err) {
    const k = new Set(kernel);
    const m = new Set(mine);
    const missing = kernel.filter((id) => !m.has(id)).length;
    const extra = mine.filter((id) => !k.has(id)).length;
    const said = notices.map((n) => `${n.kind}${n.count === undefined ? '' : ` ${n.count}`}: ${n.message}`);
    throw new Error(
      `${(err as Error).message}: kernel ${kernel.length}, table ${mine.length}, ${missing} missing, ${extra} extra; notices: ${said.join(' | ')}`,
      { cause: err },
    );
  }
  return kernel;
}

describe('conntrack event loss and resync', () => {
  /** Every record of the first test, for the second. */
  let seen: ConntrackRecord[] = [];

  it('after overflowing a 4 KiB buffer the source reports the loss, resyncs, and the table converges to `conntrack -L`; again after mass deletion', async () => {
    // Some entries before we subscribe, so the initial dump has work.
    for (const dst of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) await ns.exec(['ping', '-c', '1', '-W', '1', dst]);
    const initial = await kernelIds(ns.name);
    expect(initial.length).toBeGreaterThanOrEqual(3);

    const table = new Map<string, ConntrackRecord>();
    const recs: ConntrackRecord[] = [];
    const notices: SourceNotice[] = [];
    const errors: unknown[] = [];
    const sub = conntrack({
      dump: true,
      events: ['new', 'destroy'],
      netns: ns.name,
      recvBufferBytes: 4096,
      lossCheckMs: 20,
      // The main-thread reader: a blocked event loop then reads nothing (the batched reader keeps draining on
      // its worker, so it loses far less; conntrack-reliable.test.ts covers its loss path).
      batchedReceive: false,
      notices: { next: (n) => notices.push(n) },
    }).subscribe({
      next: (r) => {
        recs.push(r);
        if (r.type === 'destroy') table.delete(keyOf(r));
        else table.set(keyOf(r), r);
      },
      error: (e) => errors.push(e),
    });
    try {
      await waitFor(() => table.size >= initial.length, { timeoutMs: 5_000, what: 'the initial dump' });
      expect(tableIds(table)).toEqual(initial);
      expect(recs.every((r) => r.type === 'dump' && !r.resync)).toBe(true);

      // 1. Twenty thousand new flows while this process cannot read.
      const seconds = floodUdpSync(ns.name, { count: FLOWS, base: 1 });
      expect(seconds).toBeGreaterThan(0);
      const kernelAfterFlood = await converge(table, 'the table to converge after the flood', notices);
      expect(kernelAfterFlood.length).toBe(initial.length + FLOWS);
      const loss = () => notices.filter((n) => n.kind === 'loss');
      expect(loss().length).toBeGreaterThan(0);
      expect(loss().every((n) => n.where === 'kernel' && (n.count ?? 0) > 0)).toBe(true);
      // A resync re-emits the whole table as dump records marked resync, then says how many.
      // (The table can match a moment before the dump's final NLMSG_DONE arrives: wait for the notice.)
      const resyncs = () => notices.filter((n) => n.kind === 'resync');
      const resynced = () => recs.filter((r) => r.type === 'dump' && r.resync);
      await waitFor(
        () => resyncs().length > 0 && resynced().length === resyncs().reduce((a, n) => a + (n.count ?? 0), 0),
        { timeoutMs: 3_000, what: 'the resync notice' },
      ).catch(() => {});
      expect(resyncs().length).toBeGreaterThan(0);
      expect(resynced().length).toBe(resyncs().reduce((a, n) => a + (n.count ?? 0), 0));
      expect(resyncs().at(-1)?.count).toBeGreaterThanOrEqual(FLOWS);
      // Exact accounting: each flood flow made one NEW event, either delivered or counted as dropped.
      const flood = (r: ConntrackRecord) => r.orig.dst.startsWith('127.1.');
      await waitFor(
        () =>
          recs.filter((r) => r.type === 'new' && flood(r)).length + loss().reduce((a, n) => a + (n.count ?? 0), 0) ===
          FLOWS,
        { timeoutMs: 3_000, what: 'delivered + dropped NEW events to add up to the flood' },
      ).catch(() => {});
      const delivered = recs.filter((r) => r.type === 'new' && flood(r)).length;
      const dropped = loss().reduce((a, n) => a + (n.count ?? 0), 0);
      expect({ delivered, dropped, sum: delivered + dropped }).toMatchObject({ sum: FLOWS });
      expect(delivered).toBeLessThan(FLOWS / 10);
      for (const r of table.values()) {
        if (!flood(r)) continue;
        expect(r).toMatchObject({ proto: 'udp', family: 'ipv4', orig: { dport: 9 } });
      }

      // 2. A few deletions with the event loop running: DESTROY events keep the table exact.
      const lossBefore = loss().length;
      const n = await deleteConntrack((r) => r.orig.dst.startsWith('127.1.0.'), { netns: ns.name });
      expect(n).toBe(254);
      const afterDelete = await converge(table, 'the table to converge after deleting 254 entries', notices);
      expect(afterDelete.length).toBe(initial.length + FLOWS - 254);
      expect([...table.values()].some((r) => r.orig.dst.startsWith('127.1.0.'))).toBe(false);

      // 3. Every flood flow deleted while this process cannot read: the DESTROYs are lost,
      //    and the resync must infer them.
      const phase3 = recs.length;
      execFileSync('ip', ['netns', 'exec', ns.name, 'conntrack', '-D', '-p', 'udp', '--dport', '9'], {
        stdio: 'ignore',
        timeout: 30_000,
      });
      const afterMass = await converge(table, 'the table to converge after deleting every flood flow', notices);
      expect(afterMass.length).toBeLessThan(50);
      expect(loss().length).toBeGreaterThan(lossBefore);
      const inferred = recs.filter((r) => r.type === 'destroy' && r.resync);
      expect(inferred.length).toBeGreaterThan(0);
      expect(inferred.every((r) => flood(r))).toBe(true);
      const massDestroys = recs.slice(phase3).filter((r) => r.type === 'destroy');
      expect(new Set(massDestroys.map(keyOf)).size).toBe(FLOWS - 254);

      // 4. Still alive and still listening: a new flow is reported as it happens.
      const before = recs.length;
      await ns.exec(['ping', '-c', '1', '-W', '1', '127.0.0.99']);
      await waitFor(() => recs.slice(before).some((r) => r.type === 'new' && r.orig.dst === '127.0.0.99'), {
        timeoutMs: 3_000,
        what: 'a NEW event after the overflows',
      });
      await converge(table, 'the table to converge at the end', notices);
    } finally {
      sub.unsubscribe();
    }
    expect(errors).toEqual([]);
    expect(notices.filter((n) => n.kind === 'loss' && n.where !== 'kernel')).toEqual([]);
    seen = recs;
  });

  it('reports each entry destroyed once, even when its DESTROY event was queued as a resync began', () => {
    const recs = seen;
    expect(recs.filter((r) => r.type === 'destroy').length).toBeGreaterThan(FLOWS / 2);
    // Each entry ends once. An entry whose DESTROY event was still queued when a resync began
    // must not get an inferred (resync) DESTROY as well as the real one: a subscriber summing
    // `delta` or counting ended flows would count it twice.
    const destroys = new Map<string, ConntrackRecord[]>();
    for (const r of recs) if (r.type === 'destroy') destroys.set(keyOf(r), [...(destroys.get(keyOf(r)) ?? []), r]);
    const twice = [...destroys.values()].filter((d) => d.length > 1);
    expect(
      twice.map((d) => `${d[0].orig.dst}: ${d.map((r) => (r.resync ? 'inferred' : 'event')).join(' + ')}`),
      'entries reported destroyed more than once',
    ).toEqual([]);
  });
});
