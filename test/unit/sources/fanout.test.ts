import { config } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { Fanout } from '../../../src/sources/fanout.js';
import { waitFor } from '../../../src/testing/lab/index.js';

describe('Fanout (a feed’s records to its subscribers)', () => {
  afterEach(() => {
    config.onUnhandledError = null;
  });

  it('gives each record to every subscriber, in order, until it leaves', () => {
    const f = new Fanout<number>();
    const a: number[] = [];
    const b: number[] = [];
    const sa = f.subscribe((v) => a.push(v));
    f.subscribe({ next: (v) => b.push(v) });
    f.next(1);
    sa.unsubscribe();
    f.next(2);
    expect(a).toEqual([1]);
    expect(b).toEqual([1, 2]);
    expect(f.size).toBe(1);
  });

  it('a next goes to the subscribers of the moment it started, like a Subject', () => {
    const f = new Fanout<number>();
    const got: string[] = [];
    let sb: { unsubscribe(): void } | undefined;
    f.subscribe((v) => {
      got.push(`a${v}`);
      // Leaves b during this next (b still gets it) and adds c (which does not).
      sb?.unsubscribe();
      if (v === 1) f.subscribe((w) => got.push(`c${w}`));
    });
    sb = f.subscribe((v) => got.push(`b${v}`));
    f.next(1);
    f.next(2);
    expect(got).toEqual(['a1', 'b1', 'a2', 'c2']);
  });

  it('a subscriber that throws is reported as RxJS reports it, and the others still get the record', async () => {
    const reported: unknown[] = [];
    config.onUnhandledError = (e) => reported.push(e);
    const f = new Fanout<number>();
    const got: number[] = [];
    f.subscribe(() => {
      throw new Error('boom');
    });
    f.subscribe((v) => got.push(v));
    expect(() => f.next(7)).not.toThrow();
    expect(got).toEqual([7]);
    // RxJS reports from a timer: wait for it, bounded.
    await waitFor(() => reported.length > 0, { timeoutMs: 5000, what: 'the error reported' });
    expect(reported).toHaveLength(1);
    expect((reported[0] as Error).message).toBe('boom');
  });

  it('complete and error end every subscriber once; a later subscriber gets the end at once', () => {
    const f = new Fanout<number>();
    const ends: string[] = [];
    f.subscribe({ next: () => {}, complete: () => ends.push('a done') });
    f.complete();
    f.complete();
    f.error(new Error('late'));
    f.subscribe({ next: () => {}, complete: () => ends.push('b done') });
    f.next(1);
    expect(ends).toEqual(['a done', 'b done']);

    const g = new Fanout<number>();
    const errs: string[] = [];
    g.subscribe({ next: () => {}, error: (e) => errs.push((e as Error).message) });
    g.error(new Error('socket gone'));
    g.subscribe({ next: () => {}, error: (e) => errs.push(`late ${(e as Error).message}`) });
    expect(errs).toEqual(['socket gone', 'late socket gone']);
    expect(g.size).toBe(0);
  });
});
