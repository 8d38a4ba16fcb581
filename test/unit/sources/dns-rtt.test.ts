import { describe, expect, it } from 'vitest';
import { QueryMatcher } from '../../../src/sources/dns/rtt.js';

describe('QueryMatcher', () => {
  it('gives a response its round-trip time once, from the latest copy of its query', () => {
    const m = new QueryMatcher();
    m.query('10.0.0.2', 5353, '10.0.0.1', 7, 1000);
    expect(m.response('10.0.0.2', 5353, '10.0.0.1', 8, 1010)).toBeUndefined(); // another id
    expect(m.response('10.0.0.2', 5353, '10.0.0.1', 7, 1012)).toBe(12);
    expect(m.response('10.0.0.2', 5353, '10.0.0.1', 7, 1013)).toBeUndefined(); // matched already
    m.query('10.0.0.2', 5353, '10.0.0.1', 9, 2000);
    m.query('10.0.0.2', 5353, '10.0.0.1', 9, 2500); // sent again
    expect(m.response('10.0.0.2', 5353, '10.0.0.1', 9, 2510)).toBe(10);
  });

  it('forgets queries past their age, a resent one by its latest time', () => {
    const m = new QueryMatcher(100, 1000);
    m.query('a', 1, 's', 1, 0);
    m.query('a', 1, 's', 2, 500);
    m.query('a', 1, 's', 1, 900); // resent: young again, and now the newest
    m.prune(1600);
    expect(m.size).toBe(1);
    expect(m.response('a', 1, 's', 2, 1600)).toBeUndefined();
    expect(m.response('a', 1, 's', 1, 1600)).toBe(700);
  });

  it('full, it forgets the oldest query for each new one and keeps the rest', () => {
    const m = new QueryMatcher(1000, 30_000);
    for (let id = 0; id < 1000; id++) m.query('a', 1, 's', id, id);
    for (let id = 1000; id < 1500; id++) m.query('a', 1, 's', id, id); // none old enough to go by age
    expect(m.size).toBe(1000);
    expect(m.response('a', 1, 's', 499, 2000)).toBeUndefined();
    expect(m.response('a', 1, 's', 500, 2000)).toBe(1500);
    expect(m.response('a', 1, 's', 1499, 2000)).toBe(501);
  });

  it('a clock stepped back does not hold the queries behind the last one seen before; a matcher of none stays empty', () => {
    const m = new QueryMatcher(100, 1000);
    m.query('a', 1, 's', 1, 3_600_000); // before the step
    m.query('a', 1, 's', 2, 10); // after it: the clock went back an hour
    m.query('a', 1, 's', 3, 900);
    m.prune(1500);
    expect([1, 2, 3].map((id) => m.response('a', 1, 's', id, 1500))).toEqual([undefined, undefined, 600]);
    const none = new QueryMatcher(0);
    none.query('a', 1, 's', 1, 0);
    none.query('a', 1, 's', 2, 0);
    expect(none.size).toBe(1);
  });
});
