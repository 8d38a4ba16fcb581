import { Subject } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { iterateRecords, READER_LOSS_EVERY_MS, ReaderLoss } from '../../../src/flow/iterate.js';

describe('iterateRecords', () => {
  it('a reader far behind on a large buffer keeps the newest records in order and is told of every other', async () => {
    // 150 000 records into a queue of 100 000 while the reader waits: 50 000 oldest dropped, one at a time
    // (an array queue's shift() made that quadratic: seconds of a blocked event loop).
    const s = new Subject<number>();
    let lost = 0;
    const it = iterateRecords(s, 100_000, (n) => {
      lost += n;
    });
    const first = it.next(); // subscribes; the reader then waits for its first record
    for (let i = 0; i < 150_000; i++) s.next(i);
    s.complete();
    const got: number[] = [(await first).value as number];
    for await (const r of { [Symbol.asyncIterator]: () => it }) got.push(r);
    // The waiting reader wakes after the synchronous run: the queue holds the newest 100 000 by then.
    expect(lost).toBe(50_000);
    expect(got).toEqual(Array.from({ length: 100_000 }, (_, i) => 50_000 + i));
  });

  it('ends with the error the records ended with, after what was queued', async () => {
    const s = new Subject<number>();
    const it = iterateRecords(s, 10, () => {});
    const first = it.next();
    s.next(1);
    s.next(2);
    s.error(new Error('gone'));
    expect((await first).value).toBe(1);
    expect((await it.next()).value).toBe(2);
    await expect(it.next()).rejects.toThrow('gone');
  });
});

describe('ReaderLoss', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts every loss at once and reports them at most once per period, with exact counts', () => {
    vi.useFakeTimers();
    const reports: number[] = [];
    const loss = new ReaderLoss((n) => reports.push(n));
    loss.add(3);
    loss.add(4);
    expect(loss.total).toBe(7);
    expect(reports).toEqual([]);
    vi.advanceTimersByTime(READER_LOSS_EVERY_MS);
    expect(reports).toEqual([7]);
    loss.add(1);
    vi.advanceTimersByTime(READER_LOSS_EVERY_MS - 1);
    expect(reports).toEqual([7]);
    vi.advanceTimersByTime(1);
    expect(reports).toEqual([7, 1]);
    vi.advanceTimersByTime(10 * READER_LOSS_EVERY_MS);
    expect(reports).toEqual([7, 1]); // nothing new: no empty report
  });

  it('flush() reports what is pending at once (a closing flow), and the timer then reports nothing twice', () => {
    vi.useFakeTimers();
    const reports: number[] = [];
    const loss = new ReaderLoss((n) => reports.push(n));
    loss.add(5);
    loss.flush();
    expect(reports).toEqual([5]);
    vi.advanceTimersByTime(2 * READER_LOSS_EVERY_MS);
    expect(reports).toEqual([5]);
    loss.tally(10); // reported elsewhere (a daemon's notice): counted, not reported again
    loss.flush();
    expect(reports).toEqual([5]);
    expect(loss.total).toBe(15);
  });
});
