/**
 * One user's connections share one bound on the output the daemon holds for
 * them (maxUserBacklog): eight connections that stop reading while their
 * flows replay megabytes of records hold the user's bound in all, not eight
 * times a connection's, and what did not fit is dropped and counted.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../../src/auth/load.js';
import type { StatusClient } from '../../src/daemon/host.js';
import { Daemon } from '../../src/daemon/server.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { daemonFiles, RawClient } from '../helpers/daemon.js';

const KiB = 1 << 10;
const CLIENT_BACKLOG = 256 * KiB;
const USER_BACKLOG = 1024 * KiB;
const CONNECTIONS = 8;
const RECORDS = 3_000;

let dir: string;
let socket: string;
let recording: string;
let daemon: Daemon;
const clients: RawClient[] = [];

beforeAll(async () => {
  ({ dir, socket } = daemonFiles('fg-ubl-'));
  const policyFile = `${dir}/policy.json`;
  writeFileSync(
    policyFile,
    JSON.stringify({
      version: 1,
      principals: [{ who: { uid: 0 }, sources: ['replay'], filters: ['*'], capabilities: ['read-files'] }],
    }),
  );
  // 3 MB of records a millisecond apart for each flow, replayed in real time (3 s): the kernel's socket buffers
  // fill in the first second, then the daemon holds what the clients do not read.
  recording = `${dir}/flows.ndjson`;
  const line = (i: number) =>
    JSON.stringify({
      type: 'new',
      ts: i,
      orig: { src: `10.0.${i >> 8}.${i & 255}`, dst: '192.0.2.1' },
      pad: 'x'.repeat(1000),
    });
  writeFileSync(recording, `${Array.from({ length: RECORDS }, (_, i) => line(i)).join('\n')}\n`);
  daemon = new Daemon({
    socket,
    policy: () => loadPolicy(policyFile),
    maxClientBacklog: CLIENT_BACKLOG,
    maxUserBacklog: USER_BACKLOG,
    sweepStale: false,
  });
  await daemon.listen();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await daemon?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a user's output bound over all their connections", () => {
  it('refuses a user bound below a connection bound', () => {
    expect(
      () =>
        new Daemon({
          socket: `${dir}/x.sock`,
          policy: () => ({ version: 1, principals: [] }),
          maxClientBacklog: CLIENT_BACKLOG,
          maxUserBacklog: CLIENT_BACKLOG - 1,
        }),
    ).toThrow(/maxUserBacklog must be at least maxClientBacklog/);
  });

  it('eight connections that do not read hold the user bound in all; the rest is dropped and counted', async () => {
    const stuck: RawClient[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = await RawClient.connect(socket);
      clients.push(c);
      stuck.push(c);
      expect(await c.request({ op: 'hello' })).toMatchObject({ ok: true });
      const flow = (await c.request({ op: 'create', name: `stuck${i}` })).flow as number;
      expect(await c.request({ op: 'populate', flow, graph: `replay(file=${recording}, speed=1)` })).toMatchObject({
        ok: true,
      });
      expect(await c.request({ op: 'instantiate', flow })).toMatchObject({ ok: true });
    }
    // All activated, then none reads: their flows' records pile up in the daemon.
    for (const c of stuck) expect(await c.request({ op: 'activate', flow: 1 })).toMatchObject({ ok: true });
    for (const c of stuck) c.stopReading();

    const watcher = await RawClient.connect(socket);
    clients.push(watcher);
    expect(await watcher.request({ op: 'hello' })).toMatchObject({ ok: true });
    type Status = { droppedToClients: number; peakUserUnread: number; clients: StatusClient[] };
    let status: Status | undefined;
    const stuckOnes = () => status!.clients.filter((c) => c.flows.some((f) => f.name.startsWith('stuck')));
    // Every record of every replay has been sent to its client or dropped.
    await waitFor(
      async () => {
        status = (await watcher.request({ op: 'status' })).status as Status;
        const flows = stuckOnes().flatMap((c) => c.flows);
        return (
          flows.length === CONNECTIONS &&
          // Records the flow's own buffer dropped (the replay outruns the flush tick) never reached the client's turn.
          flows.every((f) => f.sent + f.droppedToClient + f.buffer.dropped === RECORDS)
        );
      },
      { timeoutMs: 30_000, what: 'every replayed record to be sent or dropped' },
    );
    const peak = status!.peakUserUnread;
    const sent = stuckOnes().reduce((n, c) => n + c.flows[0].sent, 0);
    const dropped = stuckOnes().reduce((n, c) => n + c.flows[0].droppedToClient, 0);
    // The user's bound, plus the one frame (a few records, here) that took them past it.
    expect(peak, `the daemon held up to ${peak} bytes for the user`).toBeLessThanOrEqual(USER_BACKLOG + CLIENT_BACKLOG);
    expect(peak).toBeGreaterThan(0);
    // What each connection holds now counts in the same sum.
    expect(stuckOnes().reduce((n, c) => n + c.unread, 0)).toBeLessThanOrEqual(peak);
    expect(sent).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
    expect(status!.droppedToClients).toBe(dropped);
  });
});
