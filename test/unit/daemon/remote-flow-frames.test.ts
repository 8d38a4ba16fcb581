/**
 * How a flow's records become frames for one client (pipeRecords), with a
 * stand-in client that keeps what it is sent: nothing goes after a flow's
 * `closed`, and the graph's node counts survive a record too large to send.
 */
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientView, RemoteFlow } from '../../../src/daemon/host.js';
import { lastWords, pipeRecords } from '../../../src/daemon/remote-flow.js';
import { Daemon } from '../../../src/daemon/server.js';
import { waitFor } from '../../../src/testing/lab/index.js';

const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.close();
});

/** A flow piped to a client that writes into `written` (each frame's JSON text, events as they are). */
function piped(maxClientBacklog?: number) {
  const d = new Daemon({
    socket: '/nonexistent/flowgrab.sock',
    policy: () => ({ version: 1, principals: [] }),
    sweepStale: false,
    flushMs: 0,
    maxClientBacklog,
  });
  daemons.push(d);
  const written: string[] = [];
  const records$ = new Subject<unknown>();
  const f = {
    id: 1,
    dropped: 0,
    unreported: 0,
    sent: 0,
    handle: { records$, lost$: new Subject(), stats: () => ({ nodes: [{ node: 'x', in: 1 }] }) },
  } as unknown as RemoteFlow;
  const client = {
    d,
    compact: false,
    congested: false,
    closed: false,
    write: (b: Buffer) => written.push(b.subarray(4).toString()) > 0,
    event: (e: unknown) => written.push(JSON.stringify(e)),
    final: (e: unknown) => written.push(JSON.stringify(e)),
  } as unknown as ClientView;
  pipeRecords(client, f);
  return { d, written, records$, f, client };
}

describe('a flow’s records to its client', () => {
  it('a flow the daemon closes sends nothing after its `closed`: what its close still emits is counted', () => {
    const { d, written, records$, f, client } = piped();
    // As Client.closeFlow: `closed` first, then the handle's close delivers all it holds at once, and completes.
    f.closedByDaemon = true;
    lastWords(client, f, { v: 1, ev: 'closed', flow: f.id, reason: 'policy' });
    for (let i = 0; i < 300; i++) records$.next({ i });
    records$.complete();
    const at = written.findIndex((w) => w.includes('"ev":"closed"'));
    expect(at).toBe(0);
    expect(written.slice(at + 1)).toEqual([]);
    expect({ sent: f.sent, dropped: f.dropped }).toEqual({ sent: 0, dropped: 300 });
    expect(d.stats.droppedToClients).toBe(300);
  });

  it('a record too large to send is dropped and told; the node counts go with the next frame', async () => {
    const { written, records$, f } = piped(1000);
    records$.next({ big: 'x'.repeat(2000) });
    records$.next({ small: 1 });
    await waitFor(() => written.some((w) => w.includes('"ev":"records"')), { timeoutMs: 5000, what: 'a frame' });
    const frame = JSON.parse(written.find((w) => w.includes('"ev":"records"'))!);
    expect(frame.records).toEqual([{ small: 1 }]);
    expect(frame.nodes).toEqual([{ node: 'x', in: 1 }]);
    const lost = written.map((w) => JSON.parse(w)).find((m) => m.ev === 'lost');
    expect(lost.notice).toMatchObject({ count: 1, source: 'daemon' });
    expect(lost.notice.message).toMatch(/over the 1000-byte limit/);
    expect({ sent: f.sent, dropped: f.dropped }).toEqual({ sent: 1, dropped: 1 });
  });
});
