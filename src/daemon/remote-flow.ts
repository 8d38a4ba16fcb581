/**
 * A flow a client holds in the daemon, and how its records reach the
 * client: batched as JSON text or compact frames (compact.ts) as the client
 * asked in its hello (each record encoded once, each batch once for every
 * client that gets the same records in the same tick), dropped
 * (counted, reported once the client reads again) while the client is not reading.
 */
import { type Policy, type Principal, principalFor, ROOT_PRINCIPAL } from '../auth/policy.js';
import { compactFrame, encodeCompact } from './compact.js';
import type { ClientView as Client, RemoteFlow } from './host.js';
import type { Peer } from './peer.js';
import { type Event, errorBody, frameParts, MAX_FRAME, MAX_SERVER_FRAME, PROTOCOL_VERSION } from './protocol.js';

export type { RemoteFlow } from './host.js';

/** The policy's principal for a peer (root may do anything), or undefined: denied. */
export const principalOf = (policy: Policy, peer: Peer): Principal | undefined =>
  principalFor(policy, peer) ?? (peer.uid === 0 ? ROOT_PRINCIPAL : undefined);

const NODES_EVERY_MS = 100;
/** What the client is told of `n` records dropped while it was behind. */
const behindMessage = (n: number) =>
  `${n} records dropped: the client was not reading (or its user had too much unread over all their connections)`;
/** Records in one frame at most: a flow with more waiting flushes them at once, in frames of this many. */
const BATCH_RECORDS = 256;

/** Each record's JSON, kept while the record lives: encoded once however many clients get it. */
const jsonCache = new WeakMap<object, string>();
function recordJson(r: unknown): string {
  if (typeof r !== 'object' || r === null) return JSON.stringify(r);
  let text = jsonCache.get(r);
  if (text === undefined) {
    text = JSON.stringify(r);
    jsonCache.set(r, text);
  }
  return text;
}

/**
 * The batches flushed lately and their encodings, each made once: clients whose flows got the same records (the
 * same graph, or the same source) share its JSON text (the array's inside, UTF-8) or its compact form, and the whole
 * frame when their flow ids match and no node counts ride along. Several are kept: a busy turn cuts every flow's
 * records into batches of BATCH_RECORDS, and flow 1 flushes all of its batches before flow 2 flushes its first.
 * Matched record by record (identity), so a different batch never matches.
 */
export interface Batch {
  recs: unknown[];
  json?: Buffer;
  /** null: a record JSON says differently (compact.ts), so the batch goes as JSON. */
  compact?: Buffer | null;
  frames: Map<string, Buffer>;
}
const RECENT_BATCHES = 64;
const recent: (Batch | undefined)[] = new Array(RECENT_BATCHES);
let recentNext = 0;

/**
 * Lets go of the batches (the daemon calls it when a flush tick ends): kept any longer, they and their records
 * would outlive a scavenge or two and be promoted, and the old generation's collections would then pause the
 * daemon for everyone (tens of ms). Only clients of the same tick share batches anyway.
 */
export function forgetBatches(): void {
  recent.fill(undefined);
  recentNext = 0;
}
/** The batch of these very records (one flushed lately, or a new one). Exported for tests. */
export function batchOf(recs: unknown[]): Batch {
  for (let j = 0; j < RECENT_BATCHES; j++) {
    // Newest first: the batch a flow's neighbour flushed just before is the likely match.
    const b = recent[(recentNext - 1 - j + RECENT_BATCHES) % RECENT_BATCHES];
    if (!b || b.recs.length !== recs.length || b.recs[0] !== recs[0]) continue;
    let same = true;
    for (let i = 1; i < recs.length && same; i++) same = b.recs[i] === recs[i];
    if (same) return b;
  }
  const b: Batch = { recs, frames: new Map() };
  recent[recentNext] = b;
  recentNext = (recentNext + 1) % RECENT_BATCHES;
  return b;
}

function jsonBody(b: Batch): Buffer {
  if (b.json) return b.json;
  const parts: string[] = new Array(b.recs.length);
  for (let i = 0; i < b.recs.length; i++) parts[i] = recordJson(b.recs[i]);
  b.json = Buffer.from(parts.join(','), 'utf8');
  return b.json;
}

/** One flow's frame of the batch, in the form its client asked for (hello); shared when nothing in it differs. */
export function recordsFrame(b: Batch, compact: boolean, flow: number, nodes: unknown[] | ''): Buffer {
  if (compact && b.compact === undefined) b.compact = encodeCompact(b.recs) ?? null;
  const asCompact = compact && b.compact !== null;
  const key = nodes ? undefined : `${asCompact ? 'c' : 'j'}${flow}`;
  const cached = key && b.frames.get(key);
  if (cached) return cached;
  const frame = asCompact
    ? compactFrame(flow, nodes && JSON.stringify(nodes), b.compact as Buffer)
    : frameParts(
        `{"v":${PROTOCOL_VERSION},"ev":"records","flow":${flow},"records":[`,
        jsonBody(b),
        `]${nodes && `,"nodes":${JSON.stringify(nodes)}`}}`,
      );
  if (key) b.frames.set(key, frame);
  return frame;
}

/** Streams a flow's records to the client in batches; a client that cannot keep up loses records, counted. */
export function pipeRecords(c: Client, f: RemoteFlow): void {
  let batch: unknown[] = [];
  let nodesSentAt = 0;
  // A frame's bytes at most: what a client takes and the connection may hold; and the size frames are cut to.
  const most = Math.min(MAX_SERVER_FRAME, c.d.maxBacklog);
  const cut = Math.min(MAX_FRAME, most);
  /** Records that go nowhere, counted for the flow and the daemon. */
  const drop = (n: number) => {
    f.dropped += n;
    c.d.stats.droppedToClients += n;
  };
  const flush = () => {
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    if (c.congested) {
      behind(records.length);
      return;
    }
    reportLoss(c, f);
    // The graph's node counts ride along at most every NODES_EVERY_MS: the remote stats() stays current, cheaply.
    const now = Date.now();
    let nodes: unknown[] | '' = '';
    if (now - nodesSentAt >= NODES_EVERY_MS) {
      nodesSentAt = now;
      nodes = f.handle.stats().nodes;
    }
    // Records before `from` have been sent, dropped or counted.
    let from = 0;
    try {
      // Frames of about MAX_FRAME, cut by the records' JSON (each made once, then kept: a character is a byte
      // at least): the same cuts for every client, so batches are still shared. A record longer than the
      // connection may hold goes nowhere, and is counted.
      let size = 0;
      for (let i = 0; i < records.length; i++) {
        const n = recordJson(records[i]).length;
        if (n > most || (size + n > cut && i > from)) {
          if (i > from) {
            send(records.slice(from, i), nodes);
            nodes = '';
          }
          from = i;
          size = 0;
        }
        if (n > most) {
          from = i + 1;
          tooLarge(n);
        } else size += n + 1;
      }
      if (from < records.length) send(from === 0 ? records : records.slice(from), nodes);
      from = records.length;
    } catch (err) {
      // A record JSON cannot encode (nested past the stack: only a replayed file can hold one) ends its own flow,
      // and nobody else's: this runs in the flush tick every client's flows share.
      drop(records.length - from);
      void c.closeFlow(
        f,
        `a record could not be encoded: ${(err as Error).message}`,
        'flow closed: unencodable record',
      );
    }
  };
  /** Records the client cannot take now (it, or its user over all their connections, has too much unread): counted, told later. */
  const behind = (n: number) => {
    // Count now, tell later (lossNotice waits while the client is behind): no queue of loss notices either.
    drop(n);
    lossNotice(c, f, n, behindMessage(n));
  };
  const tooLarge = (bytes: number) => {
    drop(1);
    c.d.log('warn', 'record too large for a client frame: dropped', { flow: f.id, bytes });
    lossNotice(c, f, 1, `1 record dropped: it takes ${bytes} bytes or more, over the ${most}-byte limit of a frame`);
  };
  /**
   * One frame of records, unless the client has fallen behind meanwhile (an earlier frame of this flush). A
   * compact frame may come out longer than the JSON it was cut by: then it goes as two halves.
   */
  const send = (records: unknown[], nodes: unknown[] | ''): void => {
    if (c.closed) return;
    if (c.congested) {
      behind(records.length);
      return;
    }
    const frame = recordsFrame(batchOf(records), c.compact, f.id, nodes);
    if (frame.length > cut && records.length > 1) {
      const half = records.length >> 1;
      send(records.slice(0, half), nodes);
      send(records.slice(half), '');
      return;
    }
    if (frame.length > most) {
      tooLarge(frame.length);
      return;
    }
    if (c.write(frame)) f.sent += records.length;
  };
  const ending = (end: Event) => {
    if (f.closedByDaemon) {
      // Its `closed` went first, with the loss before it (closeFlow): what is still batched is counted, not sent
      // after it, and an `end` would read as a normal finish.
      drop(batch.length);
      batch = [];
      stopLossTimer(f);
      return;
    }
    flush();
    lastWords(c, f, end);
  };
  f.handle.records$.subscribe({
    next: (r) => {
      if (f.closedByDaemon) {
        // Its `closed` has gone (closeFlow): what its close still emits is counted, not sent after it.
        drop(1);
        return;
      }
      // The first record of a batch asks for the flush tick; the others find it asked for.
      if (batch.push(r) >= BATCH_RECORDS) flush();
      else if (batch.length === 1) c.d.flushSoon(flush);
    },
    error: (err) => ending({ v: PROTOCOL_VERSION, ev: 'end', flow: f.id, error: errorBody(err) }),
    complete: () => ending({ v: PROTOCOL_VERSION, ev: 'end', flow: f.id }),
  });
  f.handle.lost$.subscribe((n) => c.event({ v: PROTOCOL_VERSION, ev: 'lost', flow: f.id, notice: n }));
}

function stopLossTimer(f: RemoteFlow): void {
  clearInterval(f.lossTimer);
  f.lossTimer = undefined;
}

/** Tells the client of its loss once it reads again (its backlog is back under the limit), with the whole count. */
function watchLoss(c: Client, f: RemoteFlow): void {
  if (f.lossTimer) return;
  f.lossTimer = setInterval(() => {
    if (!c.closed && c.congested) return;
    stopLossTimer(f);
    reportLoss(c, f);
  }, 100);
  f.lossTimer.unref();
}

function reportLoss(c: Client, f: RemoteFlow): void {
  if (f.unreported === 0 || c.closed) return;
  const count = f.unreported;
  f.unreported = 0;
  lossNotice(c, f, count, behindMessage(count));
}

/** A loss notice for the client now; while it is not reading, the count waits with the rest (watchLoss). */
function lossNotice(c: Client, f: RemoteFlow, count: number, message: string): void {
  if (c.congested) {
    f.unreported += count;
    watchLoss(c, f);
    return;
  }
  c.event(lostEvent(f, count, message));
}

const lostEvent = (f: RemoteFlow, count: number, message: string): Event => ({
  v: PROTOCOL_VERSION,
  ev: 'lost',
  flow: f.id,
  notice: { kind: 'loss', where: 'reader', count, source: 'daemon', message, ts: Date.now() },
});

/**
 * A flow's last words, never dropped however far behind its client is (it waits for them): the loss not yet
 * told, then its end. Dropped, the end would leave the client waiting for good.
 */
export function lastWords(c: Client, f: RemoteFlow, end: Event): void {
  stopLossTimer(f);
  if (f.unreported > 0) {
    c.final(lostEvent(f, f.unreported, behindMessage(f.unreported)));
    f.unreported = 0;
  }
  c.final(end);
}
