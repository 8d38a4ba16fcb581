/**
 * Replaying a recording made by `flowgrab record`: NDJSON, a header line
 * ({flowgrab, version, host, started, sources}) then one record per line.
 * speed 0 replays as fast as possible; 1 keeps the recorded timing; 10 is
 * ten times faster.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Observable, type SchedulerLike } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import type { Rec } from './registry.js';

export interface RecordingHeader {
  flowgrab: string;
  version: number;
  host: string;
  started: number;
  graph?: string;
  sources: { name: string; params: Record<string, unknown> }[];
}

export function replayRecords(file: string, speed: number, scheduler: SchedulerLike): Observable<Rec> {
  return new Observable<Rec>((sub) => {
    const input = createReadStream(file, 'utf8');
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let closed = false;
    let lineNo = 0;
    let firstTs: number | undefined;
    const t0 = scheduler.now();
    (async () => {
      for await (const line of lines) {
        if (closed) break;
        lineNo++;
        if (!line.trim()) continue;
        let r: Rec;
        try {
          r = JSON.parse(line) as Rec;
        } catch {
          throw new FlowgrabError('FG_ERR_DECODE', `${file}:${lineNo}: not a JSON line`, { op: 'replay' });
        }
        if (lineNo === 1 && typeof r.flowgrab === 'string') continue;
        const ts = typeof r.ts === 'number' ? r.ts : undefined;
        if (speed > 0 && ts !== undefined) {
          firstTs ??= ts;
          const due = t0 + (ts - firstTs) / speed - scheduler.now();
          if (due > 0) await new Promise((res) => scheduler.schedule(res, due));
        }
        if (closed) break;
        sub.next(r);
      }
    })().then(
      () => sub.complete(),
      (err) => sub.error(err),
    );
    return () => {
      closed = true;
      lines.close();
      input.destroy();
    };
  });
}
