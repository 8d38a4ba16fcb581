/**
 * Terminal output of graph records: windowed aggregates (count, sum) as a
 * table redrawn each window, largest first; anything else as lines. The table
 * never drops rows silently: what does not fit is counted in a "+N more" line,
 * and a terminal too small for a table (or a pty that reports 0 rows) gets lines.
 */

import { printable } from '../util/printable.js';

/** Below this many terminal rows a redrawn table shows too little: print lines instead. */
export const MIN_TABLE_ROWS = 5;

/** `rows()` gives the terminal's height (undefined when unknown: 40 is assumed). */
export function liveTable(
  rows: () => number | undefined = () => process.stdout.rows,
): (r: Record<string, unknown>) => string {
  let end: unknown;
  let current: Record<string, unknown>[] = [];
  return (r) => {
    if (r.type !== 'count' && r.type !== 'sum') return formatAny(r);
    const height = rows() ?? 40;
    if (height < MIN_TABLE_ROWS) return formatAny(r);
    if (r.end !== end) {
      end = r.end;
      current = [];
    }
    current.push(r);
    const metric = (x: Record<string, unknown>) => Number(x.type === 'sum' ? x.sum : x.count);
    const sorted = [...current].sort((a, b) => metric(b) - metric(a));
    // One line for the title, one for the cursor after the last row.
    const room = height - 2;
    const shown = sorted.length > room ? sorted.slice(0, room - 1) : sorted;
    const lines = shown.map((x) => {
      const { type: _t, ts: _ts, start: _s, end: _e, count, sum, ...key } = x;
      return `${String(sum ?? count).padStart(12)}  ${flat(key)}`;
    });
    if (shown.length < sorted.length) lines.push(`${'…'.padStart(12)}  +${sorted.length - shown.length} more`);
    // Clear the screen and redraw: the newest window's rows so far.
    return `\x1b[2J\x1b[H${r.type} per key, window ending ${new Date(Number(r.end)).toLocaleTimeString()}\n${lines.join('\n')}`;
  };
}

/** One readable line per record: aggregates as key=value rows, everything else compact. */
export function formatAny(r: Record<string, unknown>): string {
  if (r.type === 'top' && Array.isArray(r.items)) {
    return [
      `top ${new Date(Number(r.end)).toISOString()}`,
      ...r.items.map((i, n) => `  ${String(n + 1).padStart(3)}. ${flat(i as Record<string, unknown>)}`),
    ].join('\n');
  }
  const { type, ts: _ts, ...rest } = r;
  return `${printable(String(type ?? '')).padEnd(8)} ${flat(rest)}`;
}

function flat(o: Record<string, unknown>, prefix = ''): string {
  return Object.entries(o)
    .flatMap(([k, v]) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? [flat(v as Record<string, unknown>, `${prefix}${k}.`)]
        : [printable(`${prefix}${k}=${Array.isArray(v) ? JSON.stringify(v) : String(v)}`)],
    )
    .join(' ');
}
