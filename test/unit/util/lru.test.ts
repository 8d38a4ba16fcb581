import { describe, expect, it } from 'vitest';
import { Lru } from '../../../src/util/lru.js';

describe('Lru', () => {
  it('holds at most max entries and forgets the one used least recently', () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    expect(l.get('a')).toBe(1); // a is now the most recent
    l.set('c', 3);
    expect(l.size).toBe(2);
    expect(l.get('b')).toBe(undefined);
    expect([l.get('a'), l.get('c')]).toEqual([1, 3]);
    l.set('a', 4); // an update counts as a use
    l.set('d', 5);
    expect([l.get('a'), l.get('c'), l.get('d')]).toEqual([4, undefined, 5]);
  });
});
