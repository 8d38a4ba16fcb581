import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncScheduler, config, lastValueFrom, mergeMap, type SchedulerLike, Subject, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import '../../../src/filters/builtin.js';
import { unsettledWindows, windowClock } from '../../../src/filters/lib/windowed.js';
import { type BuildContext, filterOperator, lookupNode, type Rec } from '../../../src/filters/registry.js';
import { RECORD_FIELDS } from '../../../src/filters/sources.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { DnsCache } from '../../../src/sources/dns/cache.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';
import { ct } from '../../helpers/records.js';

function countOp(params: Record<string, unknown>, scheduler: SchedulerLike, dropped: (n: number) => void = () => {}) {
  const def = lookupNode('count');
  if (def?.kind !== 'filter') throw new Error('no count filter');
  const ctx: BuildContext = {
    path: ['root'],
    input: RECORD_FIELDS.conntrack,
    scheduler,
    notices: { next: () => {} },
    dropped,
    dnsCache: () => ({ cache: new DnsCache(), release: () => {} }),
  };
  return filterOperator(def, def.params.parse(params) as never, ctx);
}

const at = (ts: number, src = 'x'): Rec => ({ type: 'new', id: ts, ts, orig: { src } });

/** Runs a cold marble through count(params) on a TestScheduler: [frame, start, end, count] per window, and the drops. */
function run(marble: string, values: Record<string, Rec>, params: Record<string, unknown>) {
  const s = new TestScheduler((x, y) => expect(x).toEqual(y));
  const out: [number, unknown, unknown, unknown][] = [];
  let dropped = 0;
  s.run(({ cold }) => {
    cold(marble, values)
      .pipe(countOp(params, s, (n) => (dropped += n)))
      .subscribe((r) => out.push([s.now(), r.start, r.end, r.count]));
  });
  return { out, dropped };
}

describe('event-time windows (virtual time)', () => {
  it('an idle live flow still emits its window when the clock passes its end plus the lateness', () => {
    // a@0 (ts 0), b@1 (ts 1), then nothing until completion at 52: [0, 10) closes at 10 + 5 (lateness).
    const { out } = run('ab 50ms |', { a: at(0), b: at(1) }, { every: '10ms', lateness: '5ms' });
    expect(out).toEqual([[15, 0, 10, 2]]);
  });

  it('counts a record whose window has closed as dropped, and leaves the window alone', () => {
    // a (ts 0), b (ts 15) moves the watermark to 13 and closes [0, 10); c (ts 3) is late.
    const { out, dropped } = run('abc|', { a: at(0), b: at(15), c: at(3) }, { every: '10ms', lateness: '2ms' });
    expect(out).toEqual([
      [1, 0, 10, 1],
      [3, 10, 20, 1],
    ]);
    expect(dropped).toBe(1);
  });

  it('puts an out-of-order record within the lateness into its own (earlier) window', () => {
    const { out, dropped } = run('abc|', { a: at(8), b: at(12), c: at(9) }, { every: '10ms', lateness: '5ms' });
    expect(out).toEqual([
      [3, 0, 10, 2],
      [3, 10, 20, 1],
    ]);
    expect(dropped).toBe(0);
  });

  it('aligns windows to `every` on the records’ times, not on when the flow started', () => {
    const { out } = run('a 5ms b|', { a: at(1_234), b: at(1_236) }, { every: '1s', lateness: 0 });
    expect(out).toEqual([[7, 1_000, 2_000, 2]]);
  });
});

describe('event-time window timers', () => {
  /** A TestScheduler that counts the timers armed on it. */
  function counted() {
    const s = new TestScheduler((x, y) => expect(x).toEqual(y));
    const armed = { n: 0 };
    const schedule = s.schedule.bind(s);
    s.schedule = ((work: never, delay?: number, state?: unknown) => {
      armed.n++;
      return schedule(work, delay, state as never);
    }) as typeof s.schedule;
    return { s, armed };
  }

  it('still close an idle window on time after a burst whose ts ran ahead of the clock', () => {
    // a (ts 0) at frame 0, then b (ts 500) at frame 1: the event clock reads 500 at frame 1, so [0, 1000) closes at 501.
    const { s } = counted();
    const out: [number, unknown, unknown][] = [];
    s.run(({ cold }) => {
      cold('ab 2s |', { a: at(0), b: at(500) })
        .pipe(countOp({ every: '1s', lateness: 0 }, s))
        .subscribe((r) => out.push([s.now(), r.start, r.count]));
    });
    expect(out).toEqual([[501, 0, 2]]);
  });

  it('move their timer a few times per window, not once per record, when the ts run far ahead of the clock', () => {
    // 10 000 records in one instant, 100 ms of event time apart: the clock would close [0, 1h) ever sooner.
    const { s, armed } = counted();
    const out: [number, unknown, unknown][] = [];
    const recs = Array.from({ length: 10_000 }, (_, i) => at(i * 100));
    s.run(({ cold }) => {
      cold('a 7200s |', { a: 0 })
        .pipe(
          mergeMap(() => recs),
          countOp({ every: '1h', lateness: 0 }, s),
        )
        .subscribe((r) => out.push([s.now(), r.start, r.count]));
    });
    // The last record's ts is 999 900: the window [0, 3 600 000) closes 2 600 100 ms later on the clock, not before.
    expect(out).toEqual([[2_600_100, 0, 10_000]]);
    expect(armed.n).toBeGreaterThan(1);
    expect(armed.n).toBeLessThan(100);
  });
});

describe('event-time windows on the real clock', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    windowClock.trustReplacedDate = false;
  });

  /** count(params) on the real-time scheduler (or `sched`), fed by hand: the windows out so far, and the records dropped. */
  function live(params: Record<string, unknown>, sched: SchedulerLike = asyncScheduler) {
    const input = new Subject<Rec>();
    const out: [unknown, unknown][] = [];
    const drops = { n: 0 };
    const sub = input
      .pipe(countOp(params, sched, (n) => (drops.n += n)))
      .subscribe((r) => out.push([r.start, r.count]));
    return { input, out, drops, stop: () => sub.unsubscribe() };
  }

  /**
   * 10 000 records stamped `ts(i)` in one synchronous run through count(params), the clock frozen at 1 000 000:
   * how often they read it, and the windows and drops once the input completes.
   */
  function burstReads(params: Record<string, unknown>, ts: (i: number) => number) {
    fakeRealClock(1_000_000);
    const reads = vi.spyOn(Date, 'now');
    const { input, out, drops, stop } = live(params);
    reads.mockClear();
    for (let i = 0; i < 10_000; i++) input.next(at(ts(i)));
    const n = reads.mock.calls.length;
    input.complete();
    stop();
    return { reads: n, out, dropped: drops.n };
  }

  it('read the clock about once per 64 records of a burst that does not move the event clock', () => {
    // Stamped within the same millisecond (one batch from the kernel).
    const { reads, out, dropped } = burstReads({ every: '1s', lateness: '5m' }, () => 1_000_000);
    expect(reads).toBeLessThan(10_000 / 32);
    expect(reads).toBeGreaterThanOrEqual(10_000 / 64);
    expect(out).toEqual([[1_000_000, 10_000]]);
    expect(dropped).toBe(0);
  });

  it('read the clock about once per 64 records of a burst whose ts run ahead of it, too', () => {
    // 1 ms of event time apart and all ahead of the clock (a source catching up): each moves the event clock,
    // which takes them in at its next reading.
    const { reads, out, dropped } = burstReads({ every: '1h', lateness: '2s' }, (i) => 1_000_000 + i);
    expect(reads).toBeLessThan(10_000 / 50);
    expect(reads).toBeGreaterThanOrEqual(10_000 / 64);
    expect(out).toEqual([[0, 10_000]]);
    expect(dropped).toBe(0);
  });

  it('close windows inside a long synchronous burst whose ts run ahead of the clock', async () => {
    fakeRealClock(1_000_000);
    const { input, out, drops, stop } = live({ every: '1s', lateness: 0 });
    // 10 000 records 1 ms apart in one run: the full readings (a record of a new window, one per 64 records) move
    // the watermark past the windows behind it before the run ends. The window waits once for the run's end.
    for (let i = 0; i < 10_000; i++) input.next(at(1_000_000 + i));
    expect(unsettledWindows()).toBe(1);
    await Promise.resolve();
    expect(unsettledWindows()).toBe(0);
    expect(out.length).toBeGreaterThanOrEqual(9);
    expect(out.slice(0, 9)).toEqual(Array.from({ length: 9 }, (_, i) => [1_000_000 + i * 1000, 1000]));
    input.complete();
    expect(out).toEqual(Array.from({ length: 10 }, (_, i) => [1_000_000 + i * 1000, 1000]));
    expect(drops.n).toBe(0);
    stop();
  });

  it('settle every window at the end of a run, whatever one window’s scheduler throws', async () => {
    fakeRealClock(1_000_000);
    const errors: unknown[] = [];
    config.onUnhandledError = (e) => errors.push(e);
    try {
      let fail = false;
      // The real clock, and a schedule that throws when told to (a broken custom scheduler).
      const broken: SchedulerLike = {
        now: asyncScheduler.now,
        schedule: (...args: Parameters<SchedulerLike['schedule']>) => {
          if (fail) throw new Error('no timers today');
          return asyncScheduler.schedule(...args);
        },
      };
      const a = live({ every: '1s', lateness: 0 }, broken);
      const b = live({ every: '1s', lateness: 0 });
      for (const w of [a, b]) {
        w.input.next(at(0));
        w.input.next(at(999)); // the quick way: [0, 1000) is due as soon as the run ends
      }
      fail = true;
      await vi.advanceTimersByTimeAsync(20);
      expect(b.out).toEqual([[0, 2]]);
      expect(errors).toEqual([new Error('no timers today')]);
      a.stop();
      b.stop();
    } finally {
      config.onUnhandledError = null;
    }
  });

  it('take in the newest ts a record took the quick way with at the next full reading', () => {
    fakeRealClock(1_000_000);
    const { input, out, drops, stop } = live({ every: '1s', lateness: '500ms' });
    input.next(at(0));
    input.next(at(1200)); // the clock reads 1200: [0, 1000) stays open to 1500
    input.next(at(1900)); // the quick way: 1900, and [0, 1000) has closed …
    input.next(at(100)); // … so this one, 1800 behind the newest, is late (the clock would still read 1200)
    input.complete();
    expect(out).toEqual([
      [0, 1],
      [1000, 2],
    ]);
    expect(drops.n).toBe(1);
    stop();
  });

  it('split a synchronous burst at the window ends', () => {
    const { input, out, drops, stop } = live({ every: '1s', lateness: '5m' });
    // 10 000 records in one synchronous run, 1 ms of event time apart, starting just below a window end.
    const t0 = Math.floor(Date.now() / 1000) * 1000 + 990;
    for (let i = 0; i < 10_000; i++) input.next(at(t0 + i));
    input.complete();
    stop();
    expect(out).toEqual([
      [t0 - 990, 10],
      ...Array.from({ length: 9 }, (_, i) => [t0 + 10 + i * 1000, 1000]),
      [t0 + 9010, 990],
    ]);
    expect(drops.n).toBe(0);
  });

  /**
   * Fake timers whose Date the windows take for the real clock (they refuse one marked fake: see C), so records
   * may take the quick way; each timer and each advance ends a synchronous run (advanceTimersByTimeAsync).
   */
  function fakeRealClock(now: number): void {
    vi.useFakeTimers({ now });
    windowClock.trustReplacedDate = true;
  }

  it('do not move the clock from a reading the run has outlived: a long run does not close a window early', async () => {
    fakeRealClock(1_000_000);
    const { input, out, drops, stop } = live({ every: '1s', lateness: 0 });
    input.next(at(0)); // the clock reads 0 at 1 000 000
    vi.setSystemTime(1_000_400); // the same synchronous run goes on for 400 ms (a slow subscriber, a long parse)
    input.next(at(500)); // the quick way: anchored at the run's reading, the clock would run 400 ms ahead
    await vi.advanceTimersByTimeAsync(300);
    input.next(at(800)); // 800 at 1 000 700: on time, [0, 1000) is open until the clock reads 1000
    await vi.advanceTimersByTimeAsync(400);
    expect(out).toEqual([[0, 3]]);
    expect(drops.n).toBe(0);
    stop();
  });

  /**
   * One synchronous run in which the clock moves (as vi.advanceTimersByTime moves it between timers, or
   * vi.setSystemTime): every record must read it, or the run's first reading would make 9900 late.
   */
  function clockMovedInOneRun(): void {
    const { input, out, drops, stop } = live({ every: '10s', lateness: '5s' });
    input.next(at(0)); // the clock reads 0 at 1 000 000
    vi.setSystemTime(1_009_000);
    input.next(at(9500)); // 9500 at 1 009 000 (an earlier reading would give 18 500 …)
    input.next(at(10_200)); // 10 200: the watermark is at 5200
    input.next(at(9900)); // … and this record on time: [0, 10 000) is still open
    input.complete();
    expect(drops.n).toBe(0);
    expect(out).toEqual([
      [0, 3],
      [10_000, 1],
    ]);
    stop();
  }

  it('read the clock for every record when a test moves Date without fake timers (vi.setSystemTime)', () => {
    vi.setSystemTime(1_000_000);
    clockMovedInOneRun();
  });

  it('end each synchronous run even after fake timers that took queueMicrotask were uninstalled', async () => {
    vi.useFakeTimers({ toFake: ['queueMicrotask'] });
    const { input, out, stop } = live({ every: '1h', lateness: '5m' });
    const t0 = Date.now();
    input.next(at(t0)); // reads the clock and starts a run
    vi.useRealTimers(); // what the fakes held is gone
    const reads = vi.spyOn(Date, 'now');
    windowClock.trustReplacedDate = true; // the spy reads the real clock
    for (let i = 1; i <= 3; i++) {
      await new Promise((r) => setImmediate(r)); // a later turn of the event loop: a new run
      reads.mockClear();
      input.next(at(t0 + i));
      // A record of a new run reads the clock (its run's reading is not the last run's).
      expect(reads.mock.calls.length).toBeGreaterThan(0);
    }
    input.complete();
    expect(out).toEqual([[Math.floor(t0 / 3_600_000) * 3_600_000, 4]]);
    stop();
  });

  it('anchor the event clock at the arrival of a record that comes in a later turn of the event loop', async () => {
    fakeRealClock(1_000_000);
    const { input, out, stop } = live({ every: '1s', lateness: '500ms' });
    input.next(at(0)); // the event clock reads 0 now
    await vi.advanceTimersByTimeAsync(300);
    // ts 400 runs ahead of the clock (300): the clock reads 400 now, and [0, 1000) closes when it reads 1500.
    input.next(at(400));
    await vi.advanceTimersByTimeAsync(900);
    // The clock reads 1300: a record of the next window leaves [0, 1000) open (it would close, were the clock
    // anchored at the earlier reading: 1600).
    input.next(at(1200));
    expect(out).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    expect(out).toEqual([[0, 2]]);
    stop();
  });

  it('move the timer with a record that moves the clock, so the window closes on time and later ones are late', async () => {
    fakeRealClock(1_000_000);
    const { input, out, drops, stop } = live({ every: '1s', lateness: 0 });
    input.next(at(0));
    input.next(at(900)); // the same run: the clock reads 900 now, and [0, 1000) is due 100 ms on
    await vi.advanceTimersByTimeAsync(200);
    expect(out).toEqual([[0, 2]]);
    await vi.advanceTimersByTimeAsync(100);
    input.next(at(800)); // the clock reads 1200: late
    await vi.advanceTimersByTimeAsync(2000);
    expect(out).toEqual([[0, 2]]);
    expect(drops.n).toBe(1);
    stop();
  });

  it('never move the event clock back for a record behind it', async () => {
    fakeRealClock(1_000_000);
    const { input, out, stop } = live({ every: '10s', lateness: 0 });
    input.next(at(0)); // the clock reads 0 at 1 000 000
    await vi.advanceTimersByTimeAsync(5000); // and 5000 now
    input.next(at(1000)); // behind the clock
    input.next(at(2000)); // behind it too, in the same run: the clock stays at 5000
    await vi.advanceTimersByTimeAsync(5100); // 10 100: [0, 10 000) has closed
    expect(out).toEqual([[0, 3]]);
    stop();
  });

  it('count a record of a later turn late once the clock has passed its window’s end, whether the timer fired or not', async () => {
    fakeRealClock(1_000_000);
    const { input, out, drops, stop } = live({ every: '10s', lateness: 0 });
    input.next(at(0)); // the clock reads 0 at 1 000 000: the timer is due at 1 010 000
    await vi.advanceTimersByTimeAsync(1);
    input.next(at(40)); // 40 at 1 000 001: due 1 009 961, within the timer's slack (50 ms): it stays
    await vi.advanceTimersByTimeAsync(9979);
    input.next(at(30)); // the clock reads 10 019: [0, 10 000) has closed and this record is late
    await vi.advanceTimersByTimeAsync(100);
    expect(out).toEqual([[0, 2]]);
    expect(drops.n).toBe(1);
    stop();
  });

  it('read the clock for every record under fake timers that move it synchronously', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    clockMovedInOneRun();
  });

  it('read the clock for every record inside TestScheduler.run(), which puts virtual time behind the real schedulers', () => {
    const s = new TestScheduler((x, y) => expect(x).toEqual(y));
    const out: [number, unknown, unknown][] = [];
    let dropped = 0;
    s.run(({ cold }) => {
      // The same records as above, b c d in one frame: the flow uses asyncScheduler, as by default.
      cold('a 8999ms (bcd|)', { a: at(0), b: at(9500), c: at(10_200), d: at(9900) })
        .pipe(countOp({ every: '10s', lateness: '5s' }, asyncScheduler, (n) => (dropped += n)))
        .subscribe((r) => out.push([s.now(), r.start, r.count]));
    });
    expect(dropped).toBe(0);
    expect(out).toEqual([
      [9000, 0, 3],
      [9000, 10_000, 1],
    ]);
  });
});

describe('event-time windows in a flow', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fg-evtime-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A 3.6 s recording: 37 records 100 ms apart from …000.300 to …003.900. */
  const base = 1_700_000_000_300;
  const file = join(dir, 'rec.ndjson');
  const header = { flowgrab: 'recording', version: 1, host: 'h', started: base, sources: [{ name: 'conntrack' }] };
  const recs = Array.from({ length: 37 }, (_, i) => ct(i, { ts: base + i * 100 }));
  writeFileSync(file, `${[header, ...recs].map((x) => JSON.stringify(x)).join('\n')}\n`);

  async function windows(speed: number): Promise<Rec[]> {
    const fg = new Flowgrab();
    const f = fg.create();
    f.populate(`replay(file="${file}", speed=${speed}) -> count(every=1s)`);
    await f.instantiate();
    const got = lastValueFrom(f.records$.pipe(toArray()));
    await f.activate();
    const out = await got;
    await fg.close();
    return out;
  }

  it('a replay gives the same windows at speed 0 and speed 1, starting at the records’ times', async () => {
    const fast = await windows(0);
    const timed = await windows(1);
    const second = 1_700_000_000_000;
    expect(fast.map((w) => [w.start, w.end, w.count])).toEqual([
      [second, second + 1000, 7],
      [second + 1000, second + 2000, 10],
      [second + 2000, second + 3000, 10],
      [second + 3000, second + 4000, 10],
    ]);
    expect(timed).toEqual(fast);
  });

  it('close() delivers the open window before records$ completes', async () => {
    const feed = `evtime${Math.random().toString(36).slice(2)}`;
    const fg = new Flowgrab();
    const f = fg.create();
    f.populate(`fake(feed=${feed}) -> count(by=orig.src, every=1h)`);
    await f.instantiate();
    const got = lastValueFrom(f.records$.pipe(toArray()));
    await f.activate();
    const ts = Date.now();
    for (let i = 0; i < 3; i++) fakeFeed(feed).next(ct(1, { ts: ts + i }));
    await f.close();
    const hour = 3_600_000;
    expect(await got).toEqual([
      expect.objectContaining({
        type: 'count',
        start: Math.floor(ts / hour) * hour,
        end: Math.floor(ts / hour) * hour + hour,
        count: 3,
      }),
    ]);
    await fg.close();
  });

  it('refuses a lateness above its bound', async () => {
    const f = new Flowgrab().create();
    f.populate('fake(feed=x) -> count(every=1s, lateness=1h)');
    await expect(f.instantiate()).rejects.toMatchObject({
      issues: [{ code: 'bad_parameter', message: expect.stringContaining('lateness') }],
    });
  });
});
