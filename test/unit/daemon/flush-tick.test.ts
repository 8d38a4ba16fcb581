import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { batchOf, forgetBatches, pipeRecords } from '../../../src/daemon/remote-flow.js';
import { DAEMON_RECEIVE_LINGER_MS, Daemon } from '../../../src/daemon/server.js';
import { receiveWorkers } from '../../../src/netlink/batched.js';
import { waitFor } from '../../../src/testing/lab/index.js';

const policy = () => ({ principals: [] }) as never;
const daemon = (o: { receiveLingerMs?: number; flushMs?: number } = {}) =>
  new Daemon({ socket: '/nonexistent/flowgrab.sock', policy, sweepStale: false, ...o });

afterEach(() => {
  receiveWorkers.lingerMs = 1;
});

describe('flowgrabd flush tick', () => {
  it('runs every flow waiting once per tick, then lets go of the batches the flows shared', async () => {
    const d = daemon({ flushMs: 0 });
    const recs = [{ a: 1 }, { a: 2 }];
    let first: unknown;
    let runs = 0;
    const flush = () => {
      runs++;
      first = batchOf(recs);
    };
    // Per record: many calls in one turn, one tick.
    for (let i = 0; i < 100; i++) d.flushSoon(flush);
    await waitFor(() => runs > 0, { what: 'the flush tick', intervalMs: 1 });
    expect(runs).toBe(1);
    // Kept until the tick ended, then forgotten: the same records now make a new batch (nothing outlives the tick).
    expect(batchOf(recs)).not.toBe(first);
    await d.close();
  });

  it('writes at most once per flushMs: records that come meanwhile wait for the next tick, with those after them', async () => {
    const d = daemon({ flushMs: 40 });
    const ticks: number[] = [];
    const flush = () => ticks.push(performance.now());
    d.flushSoon(flush);
    // The first tick is at the end of this turn (no tick before it); the next no sooner than 40 ms after it.
    await waitFor(() => ticks.length === 1, { what: 'the first tick', intervalMs: 1 });
    const asked = performance.now();
    for (let i = 0; i < 10; i++) d.flushSoon(flush);
    await waitFor(() => ticks.length === 2, { what: 'the second tick', intervalMs: 1 });
    // (libuv may fire a timer a little early by performance.now(): its loop time is read once per turn.)
    expect(ticks[1] - ticks[0]).toBeGreaterThanOrEqual(30);
    expect(ticks[1]).toBeGreaterThan(asked);
    await d.close();
  });

  it('a flush that throws costs only itself: the other flows of the tick still write', async () => {
    const d = daemon({ flushMs: 0 });
    const ran: string[] = [];
    d.flushSoon(() => ran.push('a'));
    d.flushSoon(() => {
      throw new Error('boom');
    });
    d.flushSoon(() => ran.push('c'));
    await waitFor(() => ran.length === 2, { what: 'the flows after the failing one', intervalMs: 1 });
    expect(ran).toEqual(['a', 'c']);
    await d.close();
  });

  it('a record that cannot be encoded closes its own flow (told why); the flow beside it keeps writing', async () => {
    const d = daemon({ flushMs: 0 });
    const written: string[] = [];
    const closed: [number, string][] = [];
    const client = {
      d,
      compact: false,
      congested: false,
      closed: false,
      write: (b: Buffer) => written.push(b.toString()) > 0,
      event: () => undefined,
      closeFlow: async (f: { id: number }, reason: string) => {
        closed.push([f.id, reason]);
      },
    };
    const flow = (id: number) => {
      const records$ = new Subject<unknown>();
      const f = {
        id,
        dropped: 0,
        unreported: 0,
        sent: 0,
        handle: { records$, lost$: new Subject(), stats: () => ({ nodes: [] }) },
      };
      pipeRecords(client as never, f as never);
      return { f, records$ };
    };
    const bad = flow(1);
    const good = flow(2);
    bad.records$.next({ n: 10n });
    good.records$.next({ n: 1 });
    await waitFor(() => written.length === 1 && closed.length === 1, { what: 'the tick', intervalMs: 1 });
    expect(closed).toEqual([[1, expect.stringMatching(/a record could not be encoded: .*BigInt/)]]);
    expect(bad.f.dropped).toBe(1);
    expect(written[0]).toMatch(/"flow":2,"records":\[\{"n":1\}\]/);
    expect(good.f.sent).toBe(1);
    await d.close();
  });

  it('refuses a flush interval that is not 0–100 ms', () => {
    for (const bad of [-1, 100.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => daemon({ flushMs: bad })).toThrow(/flushMs must be 0–100 ms/);
  });

  it('forgetBatches drops every batch kept for sharing', () => {
    const recs = [{ a: 1 }];
    const b = batchOf(recs);
    expect(batchOf(recs)).toBe(b);
    forgetBatches();
    expect(batchOf(recs)).not.toBe(b);
  });
});

describe('flowgrabd receive linger', () => {
  it('sets the linger of event sockets opened from then on: the daemon default, or what it is given', () => {
    daemon();
    expect(receiveWorkers.lingerMs).toBe(DAEMON_RECEIVE_LINGER_MS);
    daemon({ receiveLingerMs: 0 });
    expect(receiveWorkers.lingerMs).toBe(0);
    daemon({ receiveLingerMs: 2.5 });
    expect(receiveWorkers.lingerMs).toBe(2.5);
  });

  it('refuses a linger that is not 0–100 ms, and keeps the one it had', () => {
    for (const bad of [-1, 100.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => daemon({ receiveLingerMs: bad })).toThrow(/receiveLingerMs must be 0–100 ms/);
      expect(receiveWorkers.lingerMs).toBe(1);
    }
  });
});
