import { describe, expect, it } from 'vitest';
import { getPath, keyGetter, pathGetter, READERS } from '../../../src/filters/params.js';

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

  it('are one function per path or key, shared by every caller, up to a bound', () => {
    expect(pathGetter('orig.src')).toBe(pathGetter(['orig', 'src']));
    expect(keyGetter(['orig.src'])).toBe(pathGetter('orig.src'));
    expect(keyGetter(['orig.src', 'id'])).toBe(keyGetter(['orig.src', 'id']));
    expect(keyGetter(['orig.src', 'id'])).not.toBe(keyGetter(['id', 'orig.src']));
    // A segment with a dot in it is not the path it spells.
    const dotted = pathGetter(['orig.src']);
    expect(dotted).not.toBe(pathGetter('orig.src'));
    expect(dotted({ 'orig.src': 1, orig: { src: 2 } })).toBe(1);
    // Past the bound (paths come from users' graphs), readers are still right, and made afresh.
    for (let i = 0; i <= READERS; i++) expect(pathGetter(`f${i}.x`)({ [`f${i}`]: { x: i } })).toBe(i);
    const late = `late${READERS}.x`;
    expect(pathGetter(late)).not.toBe(pathGetter(late));
    expect(pathGetter(late)({ [`late${READERS}`]: { x: 5 } })).toBe(5);
  });
});
