/**
 * Records of any size a graph makes reach a daemon client, or are dropped
 * and counted, without breaking the connection: the daemon cuts its records
 * frames to MAX_FRAME, sends a larger record alone (a client takes frames up
 * to MAX_SERVER_FRAME), and drops one whose frame the connection could not
 * hold, with a loss notice that says so.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteFlowgrab } from '../../src/daemon/client.js';
import { MAX_FRAME } from '../../src/daemon/protocol.js';
import { Daemon } from '../../src/daemon/server.js';
import type { LossNotice } from '../../src/flow/handle.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { daemonFiles, RawClient } from '../helpers/daemon.js';

const MiB = 1 << 20;
let dir: string;
let socket: string;
let daemon: Daemon;
let client: RemoteFlowgrab;

/** `n` records of `bytes` characters each, every one different (no encoding can share their text). */
function recording(name: string, n: number, bytes: number): string {
  const file = `${dir}/${name}.ndjson`;
  const pad = (i: number) => `${i}:`.repeat(Math.ceil(bytes / `${i}:`.length)).slice(0, bytes);
  writeFileSync(
    file,
    `${Array.from({ length: n }, (_, i) => JSON.stringify({ type: 'x', ts: i, pad: pad(i) })).join('\n')}\n`,
  );
  return file;
}

beforeAll(async () => {
  ({ dir, socket } = daemonFiles('fg-big-'));
  // Root may do anything (no policy needed); 6 MiB of unread output per client at most.
  daemon = new Daemon({
    socket,
    policy: () => ({ version: 1, principals: [] }),
    maxClientBacklog: 6 * MiB,
    sweepStale: false,
  });
  await daemon.listen();
  client = await RemoteFlowgrab.connect(socket);
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await daemon?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs `graph` to its end on the client; returns its records and loss notices. */
async function run(graph: string): Promise<{ recs: Record<string, unknown>[]; lost: LossNotice[] }> {
  const f = client.create({ name: 'big' });
  f.populate(graph);
  await f.instantiate();
  const recs: Record<string, unknown>[] = [];
  const lost: LossNotice[] = [];
  let done = false;
  let failed: unknown;
  f.records$.subscribe({
    next: (r) => recs.push(r),
    error: (err) => {
      failed = err;
      done = true;
    },
    complete: () => (done = true),
  });
  f.lost$.subscribe((n) => lost.push(n));
  await f.activate();
  await waitFor(() => done, { timeoutMs: 30_000, what: `the end of ${graph}` });
  if (failed) throw failed;
  await f.close();
  return { recs, lost };
}

describe('large records through the daemon', () => {
  it('records that together pass a frame arrive, in frames the client takes', async () => {
    // 40 records of 100 KB, read at once: batched together they would make a 4 MB frame (less than the client's
    // 6 MiB, so none is dropped for its not reading fast enough).
    const { recs, lost } = await run(`replay(file=${recording('many', 40, 100_000)}, speed=0)`);
    expect(lost).toEqual([]);
    expect(recs.map((r) => r.ts)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(recs.every((r) => (r.pad as string).length === 100_000)).toBe(true);
  });

  it('a record larger than a request frame arrives whole, alone in its frame', async () => {
    // One window() of 6 records of 400 KB: a 2.4 MB record.
    const { recs, lost } = await run(`replay(file=${recording('window', 6, 400_000)}, speed=0) -> window(every=1h)`);
    expect(lost).toEqual([]);
    expect(recs).toHaveLength(1);
    const inner = recs[0].records as { pad: string }[];
    expect(JSON.stringify(recs[0]).length).toBeGreaterThan(2 * MAX_FRAME);
    expect(inner.map((r) => r.pad.length)).toEqual(Array(6).fill(400_000));
  });

  it('a record over what the connection holds is dropped and counted, and the connection goes on', async () => {
    const before = daemon.stats.droppedToClients;
    // 20 records of 400 KB in one window: an 8 MB record, over this daemon's 6 MiB per client.
    const { recs, lost } = await run(`replay(file=${recording('huge', 20, 400_000)}, speed=0) -> window(every=1h)`);
    expect(recs).toEqual([]);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ kind: 'loss', source: 'daemon', count: 1 });
    expect(lost[0].message).toMatch(/over the 6291456-byte limit/);
    // The same connection still works: a small flow runs to its end.
    const after = await run(`replay(file=${recording('small', 3, 10)}, speed=0)`);
    expect(after.recs).toHaveLength(3);
    expect(daemon.stats.droppedToClients - before).toBe(1);
  });

  it('records that each fit but together pass what the connection holds: the rest dropped and counted, the connection kept', async () => {
    const before = daemon.stats.droppedToClients;
    const closedBefore = daemon.stats.slowClientsClosed;
    // 16 windows of the same two 600 KB records: sixteen 1.2 MB records in one flush, 19 MB for a 6 MiB client.
    const branches = Array(16).fill('window(every=1h)').join(' | ');
    const { recs, lost } = await run(`replay(file=${recording('fan', 2, 600_000)}, speed=0) -> (${branches})`);
    const dropped = daemon.stats.droppedToClients - before;
    expect(daemon.stats.slowClientsClosed).toBe(closedBefore);
    expect(recs.length).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
    expect(recs.length + dropped).toBe(16);
    expect(lost.reduce((n, l) => n + (l.count ?? 0), 0)).toBe(dropped);
  });

  it('a flow that ends while its client is not reading: the client finds its loss and its end when it reads again', async () => {
    // 200 records of 100 KB at once (20 MB) to a client that has stopped reading: most are dropped, and the
    // client is still behind when the flow ends.
    const raw = await RawClient.connect(socket);
    try {
      expect(await raw.request({ op: 'hello' })).toMatchObject({ ok: true });
      const flow = (await raw.request({ op: 'create', name: 'behind' })).flow as number;
      const graph = `replay(file=${recording('behind', 200, 100_000)}, speed=0)`;
      expect(await raw.request({ op: 'populate', flow, graph })).toMatchObject({ ok: true });
      expect(await raw.request({ op: 'instantiate', flow })).toMatchObject({ ok: true });
      raw.send({ v: 1, id: 1, op: 'activate', flow });
      raw.stopReading();
      const mine = async () => {
        const st = await client.status();
        return st.clients.flatMap((c) => c.flows).find((f) => f.name === 'behind');
      };
      // The replay has ended in the daemon: every record was sent or dropped.
      await waitFor(
        async () => {
          const f = await mine();
          return f !== undefined && f.sent + f.droppedToClient + f.buffer.dropped === 200 && f.droppedToClient > 0;
        },
        { timeoutMs: 30_000, what: 'every record of the replay to be sent or dropped' },
      );
      const f = (await mine())!;
      raw.sock.resume();
      await waitFor(() => raw.frames.some((m) => m.ev === 'end' && m.flow === flow), {
        timeoutMs: 30_000,
        what: "the flow's end",
      });
      const records = raw.frames
        .filter((m) => m.ev === 'records')
        .reduce((n, m) => n + (m.records as unknown[]).length, 0);
      const lostCount = raw.frames
        .filter((m) => m.ev === 'lost' && (m.notice as { source?: string }).source === 'daemon')
        .reduce((n, m) => n + (m.notice as { count: number }).count, 0);
      expect({ records, lostCount }).toEqual({ records: f.sent, lostCount: f.droppedToClient });
      // The loss is told before the end.
      const endAt = raw.frames.findIndex((m) => m.ev === 'end');
      expect(raw.frames.slice(endAt + 1).filter((m) => m.ev === 'lost')).toEqual([]);
    } finally {
      raw.destroy();
    }
  });
});
