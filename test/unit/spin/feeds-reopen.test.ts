/**
 * SPIN's feeds opened again when they end (flowgrabd restarted): one generation of flows at a time, a loss
 * while opening acted on once they are open, no reopening after close or after a failed first opening.
 */
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Core } from '../../../examples/spin/core.js';
import { REOPEN_MS, reopeningFeeds } from '../../../examples/spin/io/feeds.js';

/** A fake flowgrab: every flow it makes can be ended with an error; counts connections open. */
function fakeSource() {
  const flows: Subject<object>[] = [];
  const state = { connections: 0, made: 0, failNext: 0, flows };
  const make = async () => {
    if (state.failNext > 0) {
      state.failNext--;
      throw new Error('cannot reach flowgrabd');
    }
    state.made++;
    state.connections++;
    let closed = false;
    return {
      create: () => {
        const records$ = new Subject<object>();
        flows.push(records$);
        const h = {
          populate: () => h,
          instantiate: async () => {},
          activate: async () => {},
          close: async () => records$.complete(),
          records$,
          lost$: new Subject(),
        };
        return h;
      },
      close: async () => {
        if (!closed) state.connections--;
        closed = true;
      },
    } as never;
  };
  return { state, make };
}

const core = { onConntrack: () => {}, onDns: () => {}, onNeigh: () => {}, log: () => {} } as unknown as Core;
const opts = { pollMs: 1000 };

afterEach(() => {
  vi.useRealTimers();
});

describe('SPIN feeds that reopen', () => {
  it('flows that end (the daemon gone) are opened again on a new connection, once, backing off while it fails', async () => {
    vi.useFakeTimers();
    const { state, make } = fakeSource();
    const close = await reopeningFeeds(make, core, opts);
    expect([state.made, state.connections, state.flows.length]).toEqual([1, 1, 3]);
    // The connection goes: all three flows end with an error; one reopening follows, not three.
    state.failNext = 2;
    for (const f of state.flows.slice(0, 3)) f.error(new Error('connection to flowgrabd closed'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.connections).toBe(0);
    await vi.advanceTimersByTimeAsync(REOPEN_MS.first); // fails
    await vi.advanceTimersByTimeAsync(2 * REOPEN_MS.first); // fails
    expect(state.made).toBe(1);
    await vi.advanceTimersByTimeAsync(4 * REOPEN_MS.first); // works
    expect([state.made, state.connections, state.flows.length]).toEqual([2, 1, 6]);
    await vi.advanceTimersByTimeAsync(10 * REOPEN_MS.max);
    expect(state.made).toBe(2); // nothing more while they run
    await close();
    expect(state.connections).toBe(0);
    state.flows[3].error(new Error('late'));
    await vi.advanceTimersByTimeAsync(10 * REOPEN_MS.max);
    expect(state.made).toBe(2); // closed: never again
  });

  it('a first opening that fails reopens nothing later', async () => {
    vi.useFakeTimers();
    const { state, make } = fakeSource();
    state.failNext = 1;
    await expect(reopeningFeeds(make, core, opts)).rejects.toThrow('cannot reach flowgrabd');
    await vi.advanceTimersByTimeAsync(10 * REOPEN_MS.max);
    expect([state.made, state.connections]).toEqual([0, 0]);
  });
});
