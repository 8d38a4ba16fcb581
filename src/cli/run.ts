/**
 * Runs a record stream for a CLI command until it completes, --count records
 * have been printed, --duration has passed, or SIGINT/SIGTERM arrives.
 */
import type { Observable } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import { LineWriter, logLine } from './output.js';

export interface RunOptions {
  count?: number;
  durationS?: number;
  json: boolean;
}

/** Writes records straight into its own buffers (e.g. a streaming JSON writer), instead of a string per record. */
export interface RecordWriter<T> {
  record(r: T): void;
  flush(): void;
}

export function runStream<T>(
  stream: Observable<T>,
  format: (r: T) => string,
  opts: RunOptions,
  toJson: (r: T) => string = JSON.stringify,
  writer?: RecordWriter<T>,
): Promise<number> {
  const lines = new LineWriter();
  const out: RecordWriter<T> = writer ?? {
    record: (r) => lines.line(opts.json ? toJson(r) : format(r)),
    flush: () => lines.flush(),
  };
  return new Promise((resolve) => {
    let printed = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (code: number) => {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      sub?.unsubscribe();
      out.flush();
      resolve(code);
    };
    const onSignal = () => finish(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    if (opts.durationS !== undefined) timer = setTimeout(() => finish(0), opts.durationS * 1000);
    // Live output should show up promptly; dumps are flushed in large batches.
    const flusher = setInterval(() => out.flush(), 200);
    flusher.unref();
    let sub: { unsubscribe(): void } | undefined;
    sub = stream.subscribe({
      next: (r) => {
        // One kernel datagram can hold many records: stop writing at the count, not a tick later.
        if (opts.count !== undefined && printed >= opts.count) return;
        out.record(r);
        if (opts.count !== undefined && ++printed >= opts.count) queueMicrotask(() => finish(0));
      },
      error: (err) => {
        out.flush();
        reportError(err);
        finish(1);
      },
      complete: () => finish(0),
    });
    if (opts.count === 0) finish(0);
  });
}

export function reportError(err: unknown): void {
  const issues = (err as { issues?: { path: (string | number)[]; message: string }[] }).issues;
  if (err instanceof FlowgrabError && err.code === 'FG_ERR_GRAPH') {
    // Graph errors are for a person reading a terminal: line, column, caret, or one issue per line.
    if (issues?.length) for (const i of issues) process.stderr.write(`flowgrab: ${i.path.join('.')}: ${i.message}\n`);
    else process.stderr.write(`flowgrab: ${err.message}\n`);
    return;
  }
  if (err instanceof FlowgrabError) logLine('error', err.message, { code: err.code, op: err.op, errno: err.errno });
  else logLine('error', err instanceof Error ? err.message : String(err));
}
