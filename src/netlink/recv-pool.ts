/**
 * The receive workers of batched transports (batched.ts): one per open transport, started on demand, and a
 * few kept idle for the next transport (koffi loaded, loop compiled), each ended once it holds no fd.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { RECV_WORKER_SOURCE } from './recv-worker.js';

const koffiPath = createRequire(import.meta.url).resolve('koffi');

/**
 * Workers kept for the next transport once theirs closed, at most receiveWorkers.idleMax for IDLE_MS each:
 * a new subscription then finds one with koffi loaded and its loop compiled (a new worker, its isolate and
 * koffi cost some 65 ms of CPU; a kept one 2 ms). An idle worker holds no fd and keeps no process alive.
 */
const IDLE_MS = 30_000;
const idle: { worker: Worker; timer: NodeJS.Timeout }[] = [];

/**
 * Workers started in this process, how many may wait idle (tests and the benchmark set 0 to compare), and
 * the linger of transports that do not choose theirs (TransportOptions.lingerMs, default 1 ms): flowgrabd,
 * for which an event's latency counts more than a wake-up's CPU, sets less (DaemonOptions.receiveLingerMs).
 * `dumps`: whether sources read their table dumps on a worker too (true) or on libuv's pool (pulled.ts);
 * the CLI's one-shot dump, whose process ends with it, sets false: there a new worker costs more than it saves.
 * `pollTimeoutMs`: how long an idle worker's poll(2) waits with nothing to read (close() and process.exit()
 * wake it; a worker.terminate() from elsewhere takes effect when the poll returns), for transports opened
 * from then on.
 */
export const receiveWorkers = { started: 0, idleMax: 2, lingerMs: 1, dumps: true, pollTimeoutMs: 30_000 };

/** A worker running `job`: an idle one if there is, else a new one. */
export function workerFor(job: Job): Worker {
  const kept = idle.pop();
  if (kept) {
    clearTimeout(kept.timer);
    const st = loading.get(kept.worker);
    if (st) st.unref = false;
    kept.worker.ref();
    kept.worker.postMessage(job);
    return kept.worker;
  }
  receiveWorkers.started++;
  const worker = new Worker(RECV_WORKER_SOURCE, {
    eval: true,
    // Not the parent's flags: under `node --input-type=module` the source would run as a module, without require.
    execArgv: [],
    // Jobs come as messages, the first too: workerData lives as long as the worker (a ring is 8 MiB).
    workerData: { koffiPath },
  });
  worker.postMessage(job);
  const st = { loaded: false, unref: false };
  loading.set(worker, st);
  worker.on('message', (m: unknown) => {
    if ((m as { loaded?: boolean } | null)?.loaded !== true) return;
    st.loaded = true;
    if (st.unref) worker.unref();
  });
  // Its transport reports errors (onError); one while it waits idle (none are known) must not become an uncaught 'error'.
  worker.on('error', () => {});
  worker.on('exit', () => forget(worker));
  return worker;
}

/** Takes a worker off the idle list, if it is there. */
function forget(worker: Worker): void {
  const i = idle.findIndex((k) => k.worker === worker);
  if (i < 0) return;
  clearTimeout(idle[i].timer);
  idle.splice(i, 1);
}

/**
 * Whether each worker has loaded koffi. A worker must not be ended from outside before: worker.terminate()
 * while koffi's native module was still loading threw inside its initialisation, which Node makes a fatal
 * error of the whole process (a client that opened 64 sources and hung up at once brought flowgrabd down),
 * and so does the process's own exit, which ends every worker: a worker still loading is therefore kept
 * referenced (the process waits the few milliseconds for it) until it says it has loaded.
 */
const loading = new WeakMap<Worker, { loaded: boolean; unref: boolean }>();

/** worker.unref(), once the worker has loaded koffi (see `loading`). */
function unrefLoaded(worker: Worker): void {
  const st = loading.get(worker);
  if (!st || st.loaded) worker.unref();
  else st.unref = true;
}

/** Ends a worker that holds no fd: it leaves by itself once it reads the message, which is after it loaded koffi. */
function retire(worker: Worker): void {
  worker.postMessage({ retire: true });
  unrefLoaded(worker);
}

/** Keeps a worker that has let go of its job's fd for the next transport, or ends it. */
export function keep(worker: Worker): void {
  if (idle.length >= receiveWorkers.idleMax) {
    retire(worker);
    return;
  }
  unrefLoaded(worker);
  const timer = setTimeout(() => {
    forget(worker);
    retire(worker);
  }, IDLE_MS);
  timer.unref();
  idle.push({ worker, timer });
}

/** What a worker needs for one transport (recv-worker.ts). */
export interface Job {
  job: number;
  fd: number;
  efd: number;
  maxDatagram: number;
  lingerMs: number;
  pollTimeoutMs: number;
  readAhead: number;
  /** Datagrams nearly fill maxDatagram: read straight into ring slots, with skip records (recv-worker.ts). */
  fullDatagrams: boolean;
  state: SharedArrayBuffer;
  ring: SharedArrayBuffer;
}
