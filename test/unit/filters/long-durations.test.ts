/**
 * Durations past the longest timer wait (2^31 - 1 ms): Node fires such a timer after 1 ms, so `poll=1000h` or
 * `count(every=1000h)` ran every millisecond, past a policy's minimum. They are refused; computed waits that
 * may pass it are cut to it.
 */
import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import '../../../src/filters/builtin.js';
import { Duration, Period } from '../../../src/filters/params.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { lookupNode, type Rec } from '../../../src/filters/registry.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { parseConntrackOptions } from '../../../src/sources/conntrack/options.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';
import { MAX_TIMER_MS } from '../../../src/util/timer.js';
import { until } from '../../helpers/wait.js';

describe('durations longer than a timer waits', () => {
  it('are refused as parameters, with what the bound is; up to the bound they are taken', () => {
    for (const schema of [Duration, Period]) {
      for (const bad of ['1000h', '597h', MAX_TIMER_MS + 1, 1e300]) {
        const r = schema.safeParse(bad);
        expect(r.success, String(bad)).toBe(false);
        expect(r.error?.issues[0].message).toMatch(/at most 2147483647 ms \(596h: the longest a timer waits\)/);
      }
      expect(schema.parse('596h')).toBe(596 * 3_600_000);
      expect(schema.parse(MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
    }
    const fg = new Flowgrab();
    for (const g of [
      'conntrack(poll=1000h)',
      'conntrack() -> count(every=1000h)',
      'conntrack() -> dedupe(by=id, window=1000h)',
    ]) {
      const issues = fg.check(parseGraph(g));
      expect(
        issues.map((i) => i.code),
        g,
      ).toContain('bad_parameter');
    }
    expect(() => parseConntrackOptions({ pollIntervalMs: MAX_TIMER_MS + 1 })).toThrow(/pollIntervalMs/);
    expect(lookupNode('count')).toBeDefined();
  });

  it("a window's timer never asks for more than the longest wait: count(every=2147483647, lateness=5m)", async () => {
    const delays: number[] = [];
    // The real scheduler, recording every delay a window's timer asks for.
    const recording: SchedulerLike = {
      now: () => asyncScheduler.now(),
      schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
        delays.push(delay);
        return asyncScheduler.schedule(work, Math.min(delay, 60_000), state);
      },
    };
    const fg = new Flowgrab({ scheduler: recording });
    const f = fg.create();
    f.populate('fake(feed=long-window) -> count(every=2147483647, lateness=5m)');
    await f.instantiate();
    await f.activate();
    // The first moment of a window of the longest period: its close (lateness included) is past the bound.
    const every = MAX_TIMER_MS;
    const ts = Math.floor(Date.now() / every) * every + 1;
    fakeFeed('long-window').next({ type: 'new', id: 1, ts, orig: { src: 'a' } } as Rec);
    await until(() => delays.length > 0, "the window's timer");
    await fg.close();
    expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_TIMER_MS);
    // Without the cut it would have asked for the window's end plus its lateness: past the bound.
    expect(Math.max(...delays)).toBe(MAX_TIMER_MS);
  });
});
