/**
 * A remote handle's stats() as a local one's: the graph's per-node counts
 * come from the daemon, and the records its reader lost are the ones lost$
 * reported (one count, read in both places). The local half is in
 * test/unit/daemon/stats-truth.test.ts.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type RemoteFlowgrab } from '../../src/daemon/client.js';
import { Daemon } from '../../src/daemon/server.js';
import type { LossNotice } from '../../src/flow/handle.js';
import { fakeFeed } from '../../src/testing/fake-source.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { sharedTempDir } from '../helpers/daemon.js';
import { ct } from '../helpers/records.js';

let dir: string;
let daemon: Daemon;
let client: RemoteFlowgrab;

beforeAll(async () => {
  dir = sharedTempDir('fg-dstats-');
  const socket = join(dir, 'd.sock');
  // Root needs no principal: everything is allowed. No kernel sources: fake feeds in this process.
  daemon = new Daemon({ socket, policy: () => ({ version: 1, principals: [] }), sweepStale: false });
  await daemon.listen();
  client = await connect(socket);
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await daemon?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const readerLoss = (lost: LossNotice[]) =>
  lost.filter((n) => n.where === 'reader').reduce((a, n) => a + (n.count ?? 0), 0);

describe('remote stats()', () => {
  it("carries the daemon's per-node counts, and agrees with lost$ on what a small buffer dropped", async () => {
    const f = client.create({ name: 'remote-small', bufferRecords: 4 });
    f.populate('fake(feed=remote-truth) -> match(proto == tcp)');
    await f.instantiate();
    let got = 0;
    f.records$.subscribe(() => got++);
    const lost: LossNotice[] = [];
    f.lost$.subscribe((n) => lost.push(n));
    await f.activate();
    // One synchronous burst into the daemon's 4-record buffer: most are dropped there, and reported.
    for (let i = 0; i < 300; i++) fakeFeed('remote-truth').next(ct(i));
    for (let i = 0; i < 5; i++) fakeFeed('remote-truth').next(ct(300 + i, { proto: 'udp', protonum: 17 }));
    await waitFor(() => got + readerLoss(lost) === 300, {
      what: 'every record delivered or reported lost',
      timeoutMs: 20_000,
    });
    const daemonSide = await f.remoteStats();
    const s = f.stats();
    // The same count in lost$, in stats(), and in the daemon's own buffer.
    expect({ lost: readerLoss(lost), stats: s.buffer.dropped, daemon: daemonSide.buffer.dropped }).toEqual({
      lost: 300 - got,
      stats: 300 - got,
      daemon: 300 - got,
    });
    expect(s.buffer.dropped).toBeGreaterThan(0);
    expect(s.buffer.delivered).toBe(got);
    // Node counts from the daemon: 305 records into match, 300 out.
    const match = s.nodes.find((n) => n.node === 'match');
    expect(match).toMatchObject({ in: 305, out: 300 });
    expect(s.nodes).toEqual(daemonSide.nodes);
    await f.close();
  });

  it('node counts keep up without asking: records bring them along', async () => {
    const f = client.create({ name: 'remote-nodes' });
    f.populate('fake(feed=remote-nodes) -> match(proto == tcp)');
    await f.instantiate();
    expect(f.stats().nodes.find((n) => n.node === 'match')).toMatchObject({ in: 0, out: 0 });
    let got = 0;
    f.records$.subscribe(() => got++);
    await f.activate();
    let i = 0;
    // Fed until a records frame has brought counts that include the records before it (bounded).
    await waitFor(
      () => {
        fakeFeed('remote-nodes').next(ct(i++));
        return (f.stats().nodes.find((n) => n.node === 'match')?.in ?? 0) >= 2;
      },
      { what: 'node counts in stats()', timeoutMs: 20_000, intervalMs: 20 },
    );
    expect(got).toBeGreaterThan(0);
    await f.close();
  });
});

describe('remote close()', () => {
  it("delivers the daemon's open window before records$ completes, as a local close does", async () => {
    const f = client.create({ name: 'remote-window' });
    f.populate('fake(feed=remote-window) -> count(every=1h)');
    await f.instantiate();
    const got: Record<string, unknown>[] = [];
    let completed = false;
    f.records$.subscribe({ next: (r) => got.push(r), complete: () => (completed = true) });
    await f.activate();
    const now = Date.now();
    // In-process fake feed: the records are in the daemon's count node when next() returns.
    for (let i = 0; i < 5; i++) fakeFeed('remote-window').next(ct(i, { ts: now }));
    expect(got).toEqual([]);
    await f.close();
    expect(completed).toBe(true);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ count: 5 });
  });
});
