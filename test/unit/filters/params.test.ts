import { describe, expect, it } from 'vitest';
import {
  FieldPath,
  getPath,
  keyGetter,
  MAX_FIELD_PATH,
  pathGetter,
  READER_TEXT,
  READERS,
} from '../../../src/filters/params.js';

const recs: unknown[] = [
  { orig: { src: '10.0.0.1', dport: 80 }, id: 7 },
  { orig: { src: '10.0.0.2' }, id: 0 },
  { orig: null, id: 'x' },
  { orig: 'text', id: undefined },
  { orig: { src: { deep: 1 } } },
  {},
  null,
  42,
];

describe('pathGetter / keyGetter (generated readers)', () => {
  it('read what getPath reads, for every path shape and record', () => {
    for (const path of ['id', 'orig', 'orig.src', 'orig.src.deep', 'orig.dport', 'missing.path.here']) {
      const get = pathGetter(path);
      const bySegs = pathGetter(path.split('.'));
      for (const r of recs) {
        expect(get(r)).toEqual(getPath(r, path));
        expect(bySegs(r)).toEqual(getPath(r, path));
      }
    }
  });

  it('give one field as is, several joined with "|", none as ""', () => {
    const one = keyGetter(['id']);
    const two = keyGetter(['orig.src', 'id']);
    const none = keyGetter([]);
    expect(one(recs[0])).toBe(7);
    expect(two(recs[0])).toBe('10.0.0.1|7');
    expect(two(recs[2])).toBe('undefined|x');
    expect(two(null)).toBe('undefined|undefined');
    expect(none(recs[0])).toBe('');
  });

  it('quote field names in the generated code', () => {
    const odd = { 'a"b': { '\\': 1 } };
    expect(pathGetter(['a"b', '\\'])(odd)).toBe(1);
  });

  it('are one function per path or key, shared by every caller', () => {
    expect(pathGetter('orig.src')).toBe(pathGetter(['orig', 'src']));
    expect(keyGetter(['orig.src'])).toBe(pathGetter('orig.src'));
    expect(keyGetter(['orig.src', 'id'])).toBe(keyGetter(['orig.src', 'id']));
    expect(keyGetter(['orig.src', 'id'])).not.toBe(keyGetter(['id', 'orig.src']));
    // A segment with a dot in it is not the path it spells.
    const dotted = pathGetter(['orig.src']);
    expect(dotted).not.toBe(pathGetter('orig.src'));
    expect(dotted({ 'orig.src': 1, orig: { src: 2 } })).toBe(1);
  });

  it('keep the READERS paths used last, and none longer than READER_TEXT (paths come from users)', () => {
    const kept = pathGetter('orig.src');
    // Many other paths, orig.src used now and then: it stays; the first of the others does not.
    const first = pathGetter('f0.x');
    for (let i = 0; i <= 2 * READERS; i++) {
      expect(pathGetter(`f${i}.x`)({ [`f${i}`]: { x: i } })).toBe(i);
      if (i % 100 === 0) expect(pathGetter('orig.src')).toBe(kept);
    }
    expect(pathGetter('f0.x')).not.toBe(first);
    const long = Array.from({ length: READER_TEXT / 2 }, () => 'a').join('.');
    expect(pathGetter(long)).not.toBe(pathGetter(long));
    expect(pathGetter(long)({ a: 1 })).toBe(undefined);
  });

  it('take field paths of at most MAX_FIELD_PATH characters', () => {
    const at = `a${'.b'.repeat((MAX_FIELD_PATH - 1) / 2)}`.padEnd(MAX_FIELD_PATH, 'c');
    expect(at.length).toBe(MAX_FIELD_PATH);
    expect(FieldPath.safeParse(at).success).toBe(true);
    const over = FieldPath.safeParse(`${at}x`);
    expect(over.success).toBe(false);
    expect(over.error?.issues[0].message).toBe(`expected a field path of at most ${MAX_FIELD_PATH} characters`);
  });
});
