/**
 * Replaying a recording made by `flowgrab record`: NDJSON, a header line
 * ({flowgrab, version, host, started, sources}) then one record per line.
 * speed 0 replays as fast as possible; 1 keeps the recorded timing; 10 is
 * ten times faster.
 *
 * Only regular files are read (a device or FIFO could stream forever or
 * block), lines are bounded, and who opens the file is pluggable: flowgrabd
 * opens it with the client's own rights (withReplayOpener) and refuses
 * outside a client's context.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { Observable, type SchedulerLike } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import { MAX_RECORD_DEPTH, nestedPast } from '../util/json-depth.js';
import { MAX_TIMER_MS } from '../util/timer.js';
import type { Rec } from './registry.js';

/** The first line of a recording made by `flowgrab record`. */
export interface RecordingHeader {
  /** Always `"recording"`. */
  flowgrab: string;
  /** Format version (1). */
  version: number;
  /** Host name of the recording machine. */
  host: string;
  /** When the recording started (ms since the epoch). */
  started: number;
  /** The graph recorded, as text. */
  graph?: string;
  /** The sources of the recorded graph, with their parameters (the replay is checked against their fields). */
  sources: { name: string; params: Record<string, unknown> }[];
}

/** Opens a recording as a byte stream; failures arrive as the stream's error. */
export type ReplayOpener = (file: string) => Readable;

/** Longest line read from a recording (bytes): a file without newlines must not become one huge string. */
export const MAX_REPLAY_LINE = 1 << 20;

/** This process's own rights; regular files only, opened without blocking so a FIFO cannot hang it. */
export function openRegularFile(file: string): Readable {
  const out = new PassThrough();
  open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY).then(
    async (fh) => {
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        out.destroy(new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `${file}: not a regular file`, { op: 'replay' }));
        return;
      }
      if (out.destroyed) return void (await fh.close());
      createReadStream('', { fd: fh }).pipe(out);
    },
    (e: NodeJS.ErrnoException) =>
      out.destroy(new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `${file}: ${e.code ?? e.message}`, { op: 'replay' })),
  );
  return out;
}

const openers = new AsyncLocalStorage<ReplayOpener>();
let defaultOpener: ReplayOpener = openRegularFile;

/** Runs `fn` so that every replay() subscribed inside it (and in what it schedules) opens files with `opener`. */
export function withReplayOpener<T>(opener: ReplayOpener, fn: () => T): T {
  return openers.run(opener, fn);
}

/** The opener outside withReplayOpener; flowgrabd sets one that refuses, so nothing is ever opened as root by mistake. */
export function setDefaultReplayOpener(opener: ReplayOpener): void {
  defaultOpener = opener;
}

/**
 * True when replay() opens files as this process (no daemon opener in force):
 * only then may the graph checker peek at a recording's header. In flowgrabd
 * a peek would read as root what the client may not open.
 */
export function replayOpensAsProcess(): boolean {
  return (openers.getStore() ?? defaultOpener) === openRegularFile;
}

/** Lines of a byte stream, each at most `max` bytes (longer: an error, not a string the size of the file). */
export async function* boundedLines(input: Readable, max: number, file: string): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let from = 0;
    for (let nl = chunk.indexOf(10, from); nl !== -1; nl = chunk.indexOf(10, from)) {
      if (held + nl - from > max) throw tooLong(file, max);
      parts.push(chunk.subarray(from, nl));
      yield Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
      parts = [];
      held = 0;
      from = nl + 1;
    }
    held += chunk.length - from;
    if (held > max) throw tooLong(file, max);
    if (from < chunk.length) parts.push(chunk.subarray(from));
  }
  if (held > 0) yield Buffer.concat(parts).toString('utf8');
}

const tooLong = (file: string, max: number) =>
  new FlowgrabError('FG_ERR_DECODE', `${file}: a line is longer than ${max} bytes`, { op: 'replay' });

/** The records of recording `file`, paced by their `ts` at `speed` (0: as fast as possible) on `scheduler`; errors for an unreadable file or a bad line. */
export function replayRecords(file: string, speed: number, scheduler: SchedulerLike): Observable<Rec> {
  return new Observable<Rec>((sub) => {
    let input: Readable;
    try {
      input = (openers.getStore() ?? defaultOpener)(file);
    } catch (err) {
      sub.error(err);
      return;
    }
    input.on('error', () => {}); // reported through the line reader
    let closed = false;
    let lineNo = 0;
    let firstTs: number | undefined;
    const t0 = scheduler.now();
    (async () => {
      for await (const line of boundedLines(input, MAX_REPLAY_LINE, file)) {
        if (closed) break;
        lineNo++;
        if (!line.trim()) continue;
        let r: Rec;
        try {
          r = JSON.parse(line) as Rec;
        } catch {
          throw new FlowgrabError('FG_ERR_DECODE', `${file}:${lineNo}: not a JSON line`, { op: 'replay' });
        }
        if (typeof r !== 'object' || r === null || Array.isArray(r))
          throw new FlowgrabError('FG_ERR_DECODE', `${file}:${lineNo}: not a record (a JSON object)`, { op: 'replay' });
        if (nestedPast(line, MAX_RECORD_DEPTH))
          throw new FlowgrabError(
            'FG_ERR_DECODE',
            `${file}:${lineNo}: a record nested deeper than ${MAX_RECORD_DEPTH} levels (flowgrab's records have a few)`,
            { op: 'replay' },
          );
        if (lineNo === 1 && typeof r.flowgrab === 'string') continue;
        const ts = typeof r.ts === 'number' ? r.ts : undefined;
        if (speed > 0 && ts !== undefined) {
          firstTs ??= ts;
          // A gap longer than a timer takes is waited out in turns (a longer timer would fire after 1 ms).
          for (let due = t0 + (ts - firstTs) / speed - scheduler.now(); due > 0 && !closed; ) {
            await new Promise((res) => scheduler.schedule(res, Math.min(due, MAX_TIMER_MS)));
            due = t0 + (ts - firstTs) / speed - scheduler.now();
          }
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
      input.destroy();
    };
  });
}
