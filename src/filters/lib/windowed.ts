/**
 * Tumbling windows in event time: a record belongs to the window that holds
 * its `ts` (milliseconds), windows are aligned to `every` ([k·every,
 * (k+1)·every)), and a window closes when the watermark passes its end.
 *
 * The watermark is the event clock minus the allowed lateness. The event
 * clock is the largest `ts` seen; after a live source it also runs on with
 * the context's scheduler from the moment that record arrived, so an idle
 * live flow still closes its windows (a TestScheduler drives it in tests).
 * After a replayed source (SourceDef.replayed) it moves with the records
 * only, so a replay gives the same windows at any speed.
 *
 * A record whose window has closed is late: dropped and counted
 * (ctx.dropped, the node's `dropped` in stats()). Input completion and
 * flush() (FlowHandle.close()) emit the windows still open.
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import { dateTimestampProvider } from 'rxjs/internal/scheduler/dateTimestampProvider';
import { reportUnhandledError } from 'rxjs/internal/util/reportUnhandledError';
import { MAX_TIMER_MS } from '../../util/timer.js';
import { type BuildContext, lookupNode, type Rec, type Stepper } from '../registry.js';

export interface WindowFold<S> {
  init(): S;
  add(state: S, r: Rec): void;
  /** Output records for a window [start, end). */
  emit(state: S, start: number, end: number): Rec[];
}

/** Default allowed lateness (ms): how far behind the newest record a record may be and still count. */
export const DEFAULT_LATENESS_MS = 2_000;
/** Largest allowed lateness (ms): windows stay open (in memory) this long after their end. */
export const MAX_LATENESS_MS = 300_000;
/** Open windows per filter: past it the oldest closes early (its later records count as late). */
export const MAX_OPEN_WINDOWS = 256;

/** Records in a row that may join the current window without a read of the clock (see push). */
const QUICK_RUN = 64;

/** Numbers the synchronous runs of the event loop in which a window read the clock: bumped at the next microtask checkpoint. */
let currentRun = 0;
let runEnds = false;

/** Date and its clock as the process started with them: a test may put others in their place. */
const NativeDate = Date;
const nativeNow = Date.now;

/**
 * For tests: `trustReplacedDate` lets records take the quick way (see push) under a Date a test put in place,
 * one it moves only between synchronous runs, as real time would seem to move (vi.advanceTimersByTimeAsync).
 */
export const windowClock = { trustReplacedDate: false };

/**
 * True while `sched` reads the real clock: not a virtual one (TestScheduler), nor one a test put in its place
 * (TestScheduler.run() delegates the real schedulers' clock; fake timers and vi.setSystemTime replace Date,
 * and move it synchronously).
 */
function realClock(sched: SchedulerLike): boolean {
  return (
    sched.now === dateTimestampProvider.now &&
    dateTimestampProvider.delegate === undefined &&
    (windowClock.trustReplacedDate ||
      (globalThis.Date === NativeDate && Date.now === nativeNow && (Date as { isFake?: boolean }).isFake !== true))
  );
}

/**
 * The number of the current synchronous run: readings of a real-time clock taken in it are all still now. The
 * run ends with a promise job, not queueMicrotask: fake timers may replace queueMicrotask (and drop what was
 * queued when uninstalled, which would leave one run open for good), never the promise jobs of the engine.
 */
function thisRun(): number {
  if (!runEnds) {
    runEnds = true;
    void Promise.resolve().then(endRun);
  }
  return currentRun;
}

/** Windows holding a ts the quick way took ahead of their clock, once each: they take it in when the run ends (see push). */
const unsettled: ((wall: number) => void)[] = [];

/** For tests: the windows waiting for the end of this run. */
export const unsettledWindows = (): number => unsettled.length;

function endRun(): void {
  runEnds = false;
  currentRun++;
  if (unsettled.length === 0) return;
  // Only quick-way records wait here, and those ran on the real clock: one reading serves every window.
  const wall = dateTimestampProvider.now();
  for (const settle of unsettled.splice(0)) {
    // Every window settles, whatever one's scheduler throws (it has no caller here: reported as RxJS reports).
    try {
      settle(wall);
    } catch (err) {
      reportUnhandledError(err);
    }
  }
}

/** Timing of an event-time window: its length and the allowed lateness, both in milliseconds. */
export interface WindowTiming {
  every: number;
  lateness: number;
}

/** True when the pipeline's event clock may run on the scheduler (live sources); false after a replay. */
function clockDriven(ctx: BuildContext): boolean {
  if (!ctx.source) return true;
  const def = lookupNode(ctx.source.name);
  return !(def?.kind === 'source' && def.replayed);
}

export function windowed<S>(t: WindowTiming, ctx: BuildContext, fold: WindowFold<S>): Stepper {
  const { every, lateness } = t;
  const clock = clockDriven(ctx);
  const sched = ctx.scheduler;
  const open = new Map<number, S>();
  // The times, as fields of one object: a number field is written in place, where a closure variable holding a
  // number beyond a small integer (a ts, the clock) would take a new heap number per record.
  const c = {
    /** Start of the oldest open window. */
    first: Number.POSITIVE_INFINITY,
    /** The event clock: anchorTs (+ time since anchorAt on a live pipeline). */
    anchorTs: Number.NEGATIVE_INFINITY,
    anchorAt: Number.NaN,
    /** Watermark reached: every window ending at or before it has closed. */
    mark: Number.NEGATIVE_INFINITY,
    timerDue: Number.POSITIVE_INFINITY,
    /** Start of the window the last record went to: records mostly follow each other into one (no Map lookup). */
    curStart: Number.NaN,
    /** Records left that may take the quick way (below) before one reads the clock again. */
    quick: 0,
    /** The last reading of the scheduler's clock, and the synchronous run it was taken in (see thisRun). */
    wall: Number.NaN,
    run: -1,
    /** The newest ts a record took the quick way with, ahead of the clock as last read: taken in at the next reading. */
    pending: Number.NEGATIVE_INFINITY,
    /** In `unsettled` (until its run ends). */
    listed: false,
  };
  let out: ((r: Rec) => void) | undefined;
  let timer: Subscription | undefined;

  // A window's timer fires at most this late (ms) rather than being moved for every record whose ts runs ahead.
  const slack = Math.max(1, Math.min(50, every / 100));

  /** The event clock, given the scheduler's time (read once per record). */
  const eventNow = (wall: number) =>
    clock && c.anchorTs > Number.NEGATIVE_INFINITY ? c.anchorTs + wall - c.anchorAt : c.anchorTs;

  let cur: S | undefined;

  /**
   * Takes the pending ts (see push) into the event clock at `wall`, a reading taken after that record came:
   * anchored later than its arrival, the clock may trail the newest ts for the rest of its run, never run ahead.
   */
  const settle = (wall: number): boolean => {
    const p = c.pending;
    if (p === Number.NEGATIVE_INFINITY) return false;
    c.pending = Number.NEGATIVE_INFINITY;
    if (p > eventNow(wall)) {
      c.anchorTs = p;
      c.anchorAt = wall;
    }
    return true;
  };
  const settleAtRunEnd = (wall: number) => {
    c.listed = false;
    // Nothing left when a full reading in the run took it in.
    if (settle(wall)) arm();
  };

  const close = (start: number, emit: (r: Rec) => void) => {
    const s = open.get(start)!;
    open.delete(start);
    if (start === c.curStart) {
      c.curStart = Number.NaN;
      cur = undefined;
    }
    for (const r of fold.emit(s, start, start + every)) emit(r);
  };

  const closeOldest = (emit: (r: Rec) => void, upTo: number) => {
    const due = [...open.keys()].filter((s) => s + every <= upTo).sort((a, b) => a - b);
    for (const s of due) close(s, emit);
    c.first = open.size ? Math.min(...open.keys()) : Number.POSITIVE_INFINITY;
  };

  /** Moves the watermark to the event clock minus lateness, closing what it passes. */
  const advance = (emit: (r: Rec) => void, wall: number) => {
    const wm = eventNow(wall) - lateness;
    if (wm > c.mark) c.mark = wm;
    if (c.first + every <= c.mark) closeOldest(emit, c.mark);
  };

  /**
   * On a live pipeline: a timer for when the clock alone will close the oldest open window. A timer that
   * fires early only costs a wake-up (it closes what is due and arms again); one may fire at most `slack` late.
   * The clock takes in a record's ts by the end of the synchronous run it came in (see push), or when a timer
   * fires inside that run (a synchronous scheduler): a window closes at most `slack` after that.
   */
  const arm = () => {
    if (!clock || !out || open.size === 0) return;
    const due = c.anchorAt + (c.first + every + lateness - c.anchorTs);
    if (timer && due >= c.timerDue - slack) return;
    // Moved: the records' ts run ahead of the clock (a burst, a source catching up) and will likely move it again.
    // Then it fires at 7/8 of the way, so it moves about log(distance/slack) times per window, not once per slack.
    const moved = timer !== undefined;
    timer?.unsubscribe();
    const now = sched.now();
    const wait = Math.max(0, due - now);
    c.timerDue = moved && wait > 8 * slack ? now + wait - wait / 8 : due;
    timer = sched.schedule(
      () => {
        timer = undefined;
        c.timerDue = Number.POSITIVE_INFINITY;
        const wall = sched.now();
        settle(wall);
        if (out) advance(out, wall);
        arm();
      },
      // A wait past the longest a timer takes fires at that (early: it closes nothing and arms again).
      Math.min(Math.max(0, c.timerDue - now), MAX_TIMER_MS),
    );
  };

  const flushAll = (emit: (r: Rec) => void) => {
    closeOldest(emit, Number.POSITIVE_INFINITY);
    timer?.unsubscribe();
    timer = undefined;
    c.timerDue = Number.POSITIVE_INFINITY;
  };

  return {
    push: (r, emit) => {
      // The quick way: a record for the window the last one went to, in the synchronous run in which the clock
      // was last read, changes nothing but that window (it is open: closing one clears curStart) and perhaps the
      // event clock. The watermark would move too: the next full reading does that, at most QUICK_RUN records on,
      // or the timer, which moves with the clock.
      const t = r.ts;
      if (typeof t === 'number' && t >= c.curStart && t < c.curStart + every && c.run === currentRun && --c.quick > 0) {
        fold.add(cur as S, r);
        if (t <= c.anchorTs) return;
        if (!clock) {
          c.anchorTs = t; // a replay's clock is its newest ts
          return;
        }
        // A ts ahead of the clock (as last read) moves it, anchored at a reading taken after the record came: the
        // run's last reading may be old by now (a run can be long: a slow subscriber), and the clock would run
        // ahead. The next full reading takes it in, or the timer, or the end of the run (a timer on the real
        // clock fires after that): records whose ts run ahead of the clock (a burst, a source catching up) do not
        // read it each.
        if (t > c.pending && t > c.anchorTs + c.wall - c.anchorAt) {
          c.pending = t;
          if (!c.listed) {
            c.listed = true;
            unsettled.push(settleAtRunEnd);
          }
        }
        return;
      }
      c.quick = QUICK_RUN;
      let ts = typeof r.ts === 'number' && Number.isFinite(r.ts) ? r.ts : undefined;
      const wall = sched.now();
      c.wall = wall;
      settle(wall);
      // A virtual clock moves between actions run synchronously: its reading is fresh for no other record.
      c.run = realClock(sched) ? thisRun() : -1;
      let now = eventNow(wall);
      if (ts === undefined) ts = now > Number.NEGATIVE_INFINITY ? now : wall;
      if (ts > now || now === Number.NEGATIVE_INFINITY) {
        c.anchorTs = ts;
        c.anchorAt = wall;
        now = eventNow(wall);
      }
      // advance(), inline: a number passed to a call would take a heap number per record.
      const wm = now - lateness;
      if (wm > c.mark) c.mark = wm;
      if (c.first + every <= c.mark) closeOldest(emit, c.mark);
      const start = Math.floor(ts / every) * every;
      if (start + every <= c.mark) return ctx.dropped(1); // late: its window has closed
      let s = start === c.curStart ? cur : open.get(start);
      if (s === undefined) {
        if (open.size >= MAX_OPEN_WINDOWS) {
          c.mark = Math.max(c.mark, c.first + every);
          closeOldest(emit, c.mark);
        }
        s = fold.init();
        open.set(start, s);
        if (start < c.first) c.first = start;
      }
      c.curStart = start;
      cur = s;
      fold.add(s, r);
      arm();
    },
    start: (emit) => {
      out = emit;
      arm();
      return () => {
        out = undefined;
        timer?.unsubscribe();
        timer = undefined;
      };
    },
    complete: flushAll,
    flush: flushAll,
  };
}
