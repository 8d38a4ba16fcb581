/**
 * A flow a client holds in the daemon, and how its records reach the
 * client: batched as JSON text (each record encoded once, each batch once
 * for every client that gets the same records in the same tick), dropped
 * (counted, reported once the client reads again) while the client is not reading.
 */
import { type Policy, type Principal, principalFor, ROOT_PRINCIPAL } from '../auth/policy.js';
import type { ClientView as Client, RemoteFlow } from './host.js';
import type { Peer } from './peer.js';
import { errorBody, frameParts, PROTOCOL_VERSION } from './protocol.js';

export type { RemoteFlow } from './host.js';

/** The policy's principal for a peer (root may do anything), or undefined: denied. */
export const principalOf = (policy: Policy, peer: Peer): Principal | undefined =>
  principalFor(policy, peer) ?? (peer.uid === 0 ? ROOT_PRINCIPAL : undefined);

const NODES_EVERY_MS = 100;

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
 * The records of the batch flushed last, as the JSON array's inside in UTF-8: clients whose flows got the same
 * records at the same flush tick (the same graph, or the same source) share its text and encoding; each adds
 * only its frame's head and tail. Checked record by record (identity), so a different batch never matches.
 */
let lastBatch: { recs: unknown[]; body: Buffer } | undefined;
function batchBody(recs: unknown[]): Buffer {
  const last = lastBatch;
  if (last && last.recs.length === recs.length) {
    let same = true;
    for (let i = 0; i < recs.length && same; i++) same = last.recs[i] === recs[i];
    if (same) return last.body;
  }
  const parts: string[] = new Array(recs.length);
  for (let i = 0; i < recs.length; i++) parts[i] = recordJson(recs[i]);
  const body = Buffer.from(parts.join(','), 'utf8');
  lastBatch = { recs, body };
  return body;
}

/** Streams a flow's records to the client in batches; a client that cannot keep up loses records, counted. */
export function pipeRecords(c: Client, f: RemoteFlow): void {
  let batch: unknown[] = [];
  let nodesSentAt = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    if (c.congested) {
      // Count now, tell later: a client that is not reading must not get a queue of loss notices either.
      f.dropped += records.length;
      f.unreported += records.length;
      c.d.stats.droppedToClients += records.length;
      watchLoss(c, f);
      return;
    }
    reportLoss(c, f);
    // The graph's node counts ride along at most every NODES_EVERY_MS: the remote stats() stays current, cheaply.
    const now = Date.now();
    let nodes = '';
    if (now - nodesSentAt >= NODES_EVERY_MS) {
      nodesSentAt = now;
      nodes = `,"nodes":${JSON.stringify(f.handle.stats().nodes)}`;
    }
    const head = `{"v":${PROTOCOL_VERSION},"ev":"records","flow":${f.id},"records":[`;
    const tail = `]${nodes}}`;
    if (c.write(frameParts(head, batchBody(records), tail))) f.sent += records.length;
  };
  f.handle.records$.subscribe({
    next: (r) => {
      batch.push(r);
      if (batch.length >= 256) flush();
      else c.d.flushSoon(flush);
    },
    error: (err) => {
      flush();
      c.event({ v: PROTOCOL_VERSION, ev: 'end', flow: f.id, error: errorBody(err) });
    },
    complete: () => {
      flush();
      // A flow the daemon closed has had its `closed` event; an `end` would read as a normal finish.
      if (!f.closedByDaemon) c.event({ v: PROTOCOL_VERSION, ev: 'end', flow: f.id });
    },
  });
  f.handle.lost$.subscribe((n) => c.event({ v: PROTOCOL_VERSION, ev: 'lost', flow: f.id, notice: n }));
}

/** Tells the client of its loss once it reads again (its backlog is back under the limit), with the whole count. */
function watchLoss(c: Client, f: RemoteFlow): void {
  if (f.lossTimer) return;
  f.lossTimer = setInterval(() => {
    if (!c.closed && c.congested) return;
    clearInterval(f.lossTimer);
    f.lossTimer = undefined;
    reportLoss(c, f);
  }, 100);
  f.lossTimer.unref();
}

function reportLoss(c: Client, f: RemoteFlow): void {
  if (f.unreported === 0 || c.closed) return;
  const count = f.unreported;
  f.unreported = 0;
  c.event({
    v: PROTOCOL_VERSION,
    ev: 'lost',
    flow: f.id,
    notice: {
      kind: 'loss',
      where: 'reader',
      count,
      source: 'daemon',
      message: `${count} records dropped: the client was not reading`,
      ts: Date.now(),
    },
  });
}
