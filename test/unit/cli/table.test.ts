/** The terminal table never drops rows silently: "+N more", and lines when the terminal is too small. */
import { describe, expect, it } from 'vitest';
import { formatAny, liveTable, MIN_TABLE_ROWS } from '../../../src/cli/table.js';

const rec = (key: string, count: number, end = 1000) => ({ type: 'count', ts: end, start: 0, end, key, count });
const ESC = String.fromCharCode(27);
const strip = (s: string) => s.split(`${ESC}[2J${ESC}[H`).join('');

function draw(rows: number | undefined, n: number): string {
  const table = liveTable(() => rows);
  let last = '';
  for (let i = 0; i < n; i++) last = table(rec(`k${i}`, i + 1));
  return strip(last);
}

describe('liveTable', () => {
  it('shows every row when they fit', () => {
    const out = draw(40, 6).split('\n');
    expect(out).toHaveLength(7);
    expect(out.slice(1).map((l) => l.trim().split(/\s+/)[0])).toEqual(['6', '5', '4', '3', '2', '1']);
    expect(out.join('\n')).not.toContain('more');
  });

  it('in a 5-row terminal, shows the largest rows and counts the rest', () => {
    const out = draw(5, 6).split('\n');
    // Title, two rows, "+4 more": what fits in 5 rows with the cursor line.
    expect(out).toHaveLength(4);
    expect(out[1]).toMatch(/^\s+6\s+key=k5$/);
    expect(out[2]).toMatch(/^\s+5\s+key=k4$/);
    expect(out[3]).toMatch(/\+4 more$/);
  });

  it('falls back to lines on a 0-row pty and below the minimum', () => {
    for (const rows of [0, 1, MIN_TABLE_ROWS - 1]) {
      const table = liveTable(() => rows);
      const lines = [1, 2, 3].map((c) => table(rec(`k${c}`, c)));
      expect(lines).toEqual([1, 2, 3].map((c) => formatAny(rec(`k${c}`, c))));
      for (const l of lines) expect(l).not.toContain(ESC);
    }
  });

  it('starts a new table for a new window', () => {
    const table = liveTable(() => 40);
    table(rec('a', 1, 1000));
    table(rec('b', 2, 1000));
    const out = strip(table(rec('c', 3, 2000))).split('\n');
    expect(out).toHaveLength(2);
    expect(out[1]).toMatch(/key=c$/);
  });
});
