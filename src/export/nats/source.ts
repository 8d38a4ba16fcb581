/**
 * Records stored in a JetStream stream by `flowgrab export --nats`, read
 * back as the records they were (flows, conntrack, dns … records: the
 * exporter stored their JSON as is).
 *
 * - With `durable`, a durable pull consumer of that name (created when
 *   missing, from the beginning of the stream): every process reading the
 *   same durable gets a share of the records, each record to one of them.
 *   Without, an ordered consumer of its own, from the beginning, no acks.
 * - A record is acknowledged once it has left the graph: after the graph
 *   processed it and the flow's buffer had its turn to deliver it (an
 *   acknowledgement on the event loop turn after the one the graph ran in,
 *   which is the turn the flow buffer hands records to its subscribers).
 *   A record absorbed by a time window (count, top, window) is acknowledged
 *   when it entered the window: a crash loses that window's open state.
 * - Not acknowledged (the process died first): JetStream redelivers it after
 *   `ackWaitMs`, to any process of the durable.
 * - A message that is not JSON is terminated (never redelivered) and
 *   reported as a decode loss.
 */
import { Observable } from 'rxjs';
import { FlowgrabError } from '../../errors.js';
import { type NoticeObserver, publishNotice } from '../../sources/notice.js';
import { MAX_RECORD_DEPTH, nestedPast } from '../../util/json-depth.js';
import { loadNats, parseServers } from './load.js';

export interface NatsSourceOptions {
  servers: string | string[];
  /** Stream name (default `flowgrab`). */
  stream?: string;
  /** Only subjects matching this (`flowgrab.router-a.>`); default all of the stream. */
  subject?: string;
  /** Durable consumer shared by every reader of that name; none: a private ordered reader. */
  durable?: string;
  /** Redelivery of unacknowledged records after this long (default 30 s). */
  ackWaitMs?: number;
  /** Unacknowledged records per durable at most (default 1000). */
  maxAckPending?: number;
  notices?: NoticeObserver;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SUBJECT = /^[^\s]{1,256}$/;

export function checkNatsSourceOptions(o: NatsSourceOptions): void {
  parseServers(o.servers);
  if (o.stream !== undefined && !NAME.test(o.stream))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `stream must be 1..64 of A-Z a-z 0-9 _ -`);
  if (o.durable !== undefined && !NAME.test(o.durable))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `durable must be 1..64 of A-Z a-z 0-9 _ -`);
  if (o.subject !== undefined && !SUBJECT.test(o.subject))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'subject must be 1..256 characters without spaces');
  const w = o.ackWaitMs ?? 30_000;
  if (!Number.isFinite(w) || w < 100 || w > 86_400_000)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'ackWaitMs must be 100 ms .. 1 day');
  const p = o.maxAckPending ?? 1000;
  if (!Number.isInteger(p) || p < 1 || p > 1_000_000)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'maxAckPending must be 1 .. 1000000');
}

type Lib = Awaited<ReturnType<typeof loadNats>>;

// biome-ignore lint/suspicious/noExplicitAny: the connection type comes from an optional module
async function durableConsumer(lib: Lib, nc: any, o: NatsSourceOptions & { stream: string; durable: string }) {
  const jsm = await lib.js.jetstreamManager(nc, { timeout: 5000 });
  const config = {
    durable_name: o.durable,
    ack_policy: lib.js.AckPolicy.Explicit,
    deliver_policy: lib.js.DeliverPolicy.All,
    ack_wait: (o.ackWaitMs ?? 30_000) * 1_000_000,
    max_ack_pending: o.maxAckPending ?? 1000,
    ...(o.subject ? { filter_subject: o.subject } : {}),
  };
  try {
    await jsm.consumers.info(o.stream, o.durable);
  } catch {
    // Missing: made here. Two readers racing to make it with the same config both succeed.
    await jsm.consumers.add(o.stream, config);
  }
  return lib.js.jetstream(nc).consumers.get(o.stream, o.durable);
}

export function natsRecords(o: NatsSourceOptions): Observable<Record<string, unknown>> {
  checkNatsSourceOptions(o);
  const servers = parseServers(o.servers);
  const stream = o.stream ?? 'flowgrab';
  return new Observable((sub) => {
    let closed = false;
    let stop: (() => Promise<void>) | undefined;
    let toAck: { ack(): void }[] = [];
    let ackScheduled = false;
    const ackNow = () => {
      ackScheduled = false;
      const batch = toAck;
      toAck = [];
      if (!closed) for (const m of batch) m.ack();
    };
    (async () => {
      const lib = await loadNats();
      // Until a first server answers (the client's waitOnFirstConnect cannot be cancelled on unsubscribe).
      let nc: Awaited<ReturnType<Lib['transport']['connect']>> | undefined;
      for (let wait = 250; !nc && !closed; wait = Math.min(wait * 2, 5000)) {
        try {
          nc = await lib.transport.connect({
            servers,
            name: `flowgrab-source-${o.durable ?? 'ordered'}`,
            maxReconnectAttempts: -1,
            reconnectTimeWait: 500,
            timeout: 2000,
          });
        } catch {
          await new Promise((r) => setTimeout(r, wait).unref());
        }
      }
      if (!nc) return;
      const conn = nc;
      stop = async () => {
        await conn.close().catch(() => undefined);
      };
      if (closed) return stop();
      const consumer = o.durable
        ? await durableConsumer(lib, conn, { ...o, stream, durable: o.durable })
        : await lib.js.jetstream(conn).consumers.get(stream, o.subject ? { filter_subjects: [o.subject] } : {});
      const msgs = await consumer.consume({ max_messages: 256 });
      for await (const m of msgs) {
        if (closed) break;
        let rec: Record<string, unknown>;
        try {
          rec = recordOf(m.string());
        } catch (err) {
          if (o.durable) m.term();
          publishNotice(
            {
              kind: 'loss',
              source: 'nats',
              where: 'decode',
              count: 1,
              message: `${m.subject} #${m.seq}: ${(err as Error).message}`,
              ts: Date.now(),
            },
            o.notices,
          );
          continue;
        }
        sub.next(rec);
        if (!o.durable) continue;
        toAck.push(m);
        if (!ackScheduled) {
          ackScheduled = true;
          // After the graph's turn: the flow buffer delivers on the next turn, queued before this.
          setImmediate(() => setImmediate(ackNow));
        }
      }
    })().then(
      () => undefined,
      (err) => {
        if (!closed)
          sub.error(
            err instanceof FlowgrabError
              ? err
              : new FlowgrabError('FG_ERR_INVALID_STATE', `nats source: ${(err as Error).message}`, {
                  op: 'nats.source',
                  cause: err,
                }),
          );
      },
    );
    return () => {
      closed = true;
      void stop?.();
    };
  });
}

/**
 * A message as a record, checked as a replayed line is: a JSON object nesting at most MAX_RECORD_DEPTH levels.
 * Anyone who may publish on the stream chooses it: a record of 300 000 nested lists crashed `flowgrab watch`
 * (and a durable consumer had acknowledged the records before it).
 */
function recordOf(text: string): Record<string, unknown> {
  const rec: unknown = JSON.parse(text);
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new Error('not a record (a JSON object)');
  if (nestedPast(text, MAX_RECORD_DEPTH)) throw new Error(`a record nested deeper than ${MAX_RECORD_DEPTH} levels`);
  return rec as Record<string, unknown>;
}
