/** A local user cannot flood flowgrabd's log: lines per user and message are held back past a burst, and counted. */
import { describe, expect, it } from 'vitest';
import { LOG_BURST, LogLimiter } from '../../../src/daemon/log-limit.js';

type Line = [string, string, Record<string, unknown> | undefined];

function limiter(burst = 3, windowMs = 1000) {
  const lines: Line[] = [];
  let now = 0;
  const l = new LogLimiter(
    (level, msg, fields) => lines.push([level, msg, fields]),
    burst,
    windowMs,
    () => now,
  );
  return { l, lines, at: (t: number) => (now = t) };
}

describe('LogLimiter', () => {
  it("writes a user's first lines of a message, holds back the rest of the window, then says how many", () => {
    const { l, lines, at } = limiter();
    for (let i = 0; i < 10; i++) l.log('info', 'client connected', { uid: 1000, client: i });
    expect(lines.map((x) => x[2]?.client)).toEqual([0, 1, 2]);
    // Another message, another user: their own bursts.
    l.log('info', 'client gone', { uid: 1000 });
    l.log('info', 'client connected', { uid: 1001 });
    expect(lines).toHaveLength(5);
    at(1000);
    l.log('info', 'client connected', { uid: 1000, client: 10 });
    expect(lines.slice(5)).toEqual([
      ['info', 'log lines held back', { uid: 1000, msg: 'client connected', count: 7, seconds: 1 }],
      ['info', 'client connected', { uid: 1000, client: 10 }],
    ]);
  });

  it("never holds back root's lines or the daemon's own, and reports a window's count when swept", () => {
    const { l, lines, at } = limiter();
    for (let i = 0; i < 10; i++) {
      l.log('warn', 'policy reloaded', {});
      l.log('info', 'client connected', { uid: 0 });
    }
    expect(lines).toHaveLength(20);
    for (let i = 0; i < 5; i++) l.log('warn', 'connection refused: too many', { uid: 7 });
    expect(lines).toHaveLength(23);
    l.sweep(); // the window is not over: nothing yet
    expect(lines).toHaveLength(23);
    at(1500);
    l.sweep();
    expect(lines.at(-1)).toEqual([
      'warn',
      'log lines held back',
      { uid: 7, msg: 'connection refused: too many', count: 2, seconds: 1 },
    ]);
    l.sweep();
    expect(lines).toHaveLength(24);
  });

  it('keeps following a bounded number of users: a flood of uids shares one window per message', () => {
    const { l, lines } = limiter(1);
    for (let uid = 1; uid <= 5000; uid++) l.log('info', 'client connected', { uid });
    // 1024 users get their line; the rest share one key and one line.
    expect(lines.length).toBe(1025);
    expect(LOG_BURST).toBeGreaterThan(1);
  });
});
