/**
 * Runs a record stream for a CLI command until it completes, --count records
 * have been printed, --duration has passed, SIGINT/SIGTERM arrives, or the
 * reader of stdout goes away (`| head -1`): then it stops quietly and the
 * stream's teardown (sockets, nft tables) runs before the process exits.
 */
import type { Observable } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import { LineWriter, printError } from './output.js';
import { lacksNetAdmin, privilegeHint } from './privilege.js';

export interface RunOptions {
  count?: number;
  durationS?: number;
  json: boolean;
  /** Where lines go (default: stdout). `record --out` passes its file, so stdout stays quiet. */
  out?: LineWriter;
}

/** Set when the output broke: further writes are pointless. The exit code it calls for (0: the reader left). */
let stdoutGone = false;
let stdoutGoneCode = 0;
const outputWatchers = new Set<(code: number) => void>();
let watching = false;

/**
 * EPIPE on stdout means the reader left (`| head -1`): not an error, just the end (code 0). Output that
 * cannot be written (a full disk, /dev/full) is one clear error line and code 1. Either way the command
 * stops as it does at the end, its teardown (sockets, nft tables) run.
 */
function watchStdout(onGone: (code: number) => void): () => void {
  outputWatchers.add(onGone);
  if (!watching) {
    watching = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (stdoutGone) return;
      stdoutGone = true;
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') {
        printError(`writing the output: ${err.message}`);
        stdoutGoneCode = 1;
      }
      // Not from inside the write that failed (a source's callback, mid-datagram): just after it.
      queueMicrotask(() => {
        for (const f of [...outputWatchers]) f(stdoutGoneCode);
      });
    });
  }
  if (stdoutGone) queueMicrotask(() => onGone(stdoutGoneCode));
  return () => outputWatchers.delete(onGone);
}

/** Whether writing stdout failed for a reason other than its reader leaving: the exit code is then 1. */
function outputFailed(): boolean {
  if (stdoutGoneCode === 1) return true;
  // A last write that just failed: the stream knows at once, its error event comes a tick later.
  const err = process.stdout.errored as NodeJS.ErrnoException | null;
  return err != null && err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED';
}

/** A LineWriter on stdout that drops its lines once the reader of stdout has gone. */
function stdoutWriter(): LineWriter {
  return new LineWriter(process.stdout, () => stdoutGone);
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
  const lines = opts.out ?? stdoutWriter();
  const out: RecordWriter<T> = writer ?? {
    record: (r) => lines.line(opts.json ? toJson(r) : format(r)),
    flush: () => lines.flush(),
  };
  const count = opts.count ?? Number.POSITIVE_INFINITY;
  return runWriting(
    (end, wrote) => {
      let printed = 0;
      let sub: { unsubscribe(): void } | undefined;
      const done = new Promise<void>((resolve, reject) => {
        sub = stream.subscribe({
          next: (r) => {
            // One kernel datagram can hold many records: stop writing at the count, not a tick later.
            if (printed >= count) return;
            out.record(r);
            wrote();
            if (++printed >= count) end();
          },
          error: reject,
          complete: resolve,
        });
      });
      return { done, stop: () => sub?.unsubscribe() };
    },
    out,
    opts.durationS,
  );
}

/** Work that writes its own output (runWriting): its end, and a way to end it early. */
export interface Writing {
  done: Promise<void>;
  stop(): void;
}

/** How long written output may wait in `out` for more before it goes out. */
const FLUSH_MS = 200;

/**
 * Runs a command's work until it ends, `start`'s `end` is called (e.g. at --count), `durationS` has passed,
 * SIGINT/SIGTERM arrives or the reader of stdout goes away; then stops the work (its teardown runs) and
 * flushes `out`. An error the work ends with is reported. Resolves to the exit code. The work calls `wrote`
 * after writing to `out`: what it wrote goes out within FLUSH_MS (a full buffer at once). The flushing interval
 * runs while writes come and stops after one without any, so a quiet stream wakes nothing; a busy one's hot
 * loop only counts (arming a timer there, on a path its compiled code had not seen, cost a deoptimization).
 */
export function runWriting(
  start: (end: () => void, wrote: () => void) => Writing,
  out: { flush(): void },
  durationS?: number,
): Promise<number> {
  return new Promise((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let flusher: NodeJS.Timeout | undefined;
    let writes = 0;
    let flushed = 0;
    const tick = () => {
      if (writes === flushed) {
        clearInterval(flusher);
        flusher = undefined;
        return;
      }
      flushed = writes;
      out.flush();
    };
    const wrote = () => {
      writes++;
      if (flusher !== undefined || done) return;
      flusher = setInterval(tick, FLUSH_MS);
      flusher.unref();
    };
    let work: Writing | undefined;
    let unwatch = () => {};
    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      clearInterval(flusher);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      unwatch();
      work?.stop();
      out.flush();
      resolve(outputFailed() ? 1 : code);
    };
    const onSignal = () => finish(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    unwatch = watchStdout(finish);
    if (durationS !== undefined) timer = setTimeout(() => finish(0), durationS * 1000);
    work = start(() => queueMicrotask(() => finish(0)), wrote);
    work.done.then(
      () => finish(0),
      (err) => {
        // Stopping early closes the work's socket under it: that error is the stop, not a failure.
        if (done) return;
        out.flush();
        reportError(err);
        finish(1);
      },
    );
    if (done) work.stop();
  });
}

/** Set by commands that run through flowgrabd: the daemon holds the privileges, so no hint about them. */
export const viaDaemon = { on: false };

/** One error line on stderr in flowgrab's style (`PROG: error: …`), whatever was thrown. */
export function reportError(err: unknown, prog = 'flowgrab'): void {
  const issues = (err as { issues?: { path: (string | number)[]; message: string }[] }).issues;
  if (err instanceof FlowgrabError && err.code === 'FG_ERR_GRAPH' && issues?.length) {
    // Graph errors list every problem, one per line, each with its path in the graph when it has one.
    for (const i of issues) printError(i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message, prog);
    return;
  }
  if (err instanceof FlowgrabError && issues?.length && err.code === 'FG_ERR_DENIED') {
    for (const i of issues) printError(i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message, prog);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (!viaDaemon.on && lacksNetAdmin() && err instanceof FlowgrabError) {
    const hint = privilegeHint(err);
    if (hint) {
      printError(hint, prog);
      return;
    }
  }
  printError(message, prog);
}
