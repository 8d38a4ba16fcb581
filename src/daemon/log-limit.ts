/**
 * Log lines a user's actions cause, bounded per user and message: any local
 * user can connect and hang up thousands of times a second (45 000 lines in
 * 5 s were seen), and a log that floods hides what matters and fills the
 * disk. Each (uid, message) may write `burst` lines per window; the rest are
 * counted and reported in one line once the window is over. Root's lines and
 * the daemon's own (no uid) are never held back.
 */
import type { LogFn } from './host.js';

/** Lines per user and message in one window. */
export const LOG_BURST = 20;
export const LOG_WINDOW_MS = 10_000;
/** Keys followed at once; past it, users share one key per message (a flood of uids is one flood). */
const MAX_KEYS = 1024;

interface Window {
  start: number;
  lines: number;
  suppressed: number;
  level: Parameters<LogFn>[0];
  msg: string;
  uid: number | '*';
}

export class LogLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly out: LogFn,
    private readonly burst = LOG_BURST,
    private readonly windowMs = LOG_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  readonly log: LogFn = (level, msg, fields = {}) => {
    const uid = fields.uid;
    if (typeof uid !== 'number' || uid === 0) return this.out(level, msg, fields);
    const t = this.now();
    let key = `${uid}|${msg}`;
    let w = this.windows.get(key);
    if (w && t - w.start >= this.windowMs) {
      this.end(key, w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= MAX_KEYS) this.sweep(t);
      const shared = this.windows.size >= MAX_KEYS;
      if (shared) {
        key = `*|${msg}`;
        w = this.windows.get(key);
      }
      if (!w) {
        w = { start: t, lines: 0, suppressed: 0, level, msg, uid: shared ? '*' : uid };
        this.windows.set(key, w);
      }
    }
    if (++w.lines <= this.burst) this.out(level, msg, fields);
    else w.suppressed++;
  };

  /** Ends the windows that are over, reporting what each held back (the daemon calls it every window). */
  sweep(t = this.now()): void {
    for (const [key, w] of this.windows) if (t - w.start >= this.windowMs) this.end(key, w);
  }

  private end(key: string, w: Window): void {
    this.windows.delete(key);
    if (w.suppressed > 0)
      this.out(w.level, 'log lines held back', {
        uid: w.uid,
        msg: w.msg,
        count: w.suppressed,
        seconds: this.windowMs / 1000,
      });
  }
}
