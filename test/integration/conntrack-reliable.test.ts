/**
 * Reliable events and "never twice", against the real kernel. Two subscribers
 * in one process watch the same namespace, one in reliable mode
 * (NETLINK_BROADCAST_SEND_ERROR), both with a 64 KiB buffer, while the event
 * loop is blocked through a flood of new flows and then a `conntrack -D` of
 * all of them. The kernel keeps every DESTROY the reliable socket could not
 * take and sends it again later, to every listener: the reliable subscriber
 * gets each flow's real DESTROY; the normal one reports loss and resyncs; and
 * neither emits any (id, type) twice.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { entryKey } from '../../src/sources/conntrack/ended.js';
import type { ConntrackRecord } from '../../src/sources/conntrack/record.js';
import { conntrack } from '../../src/sources/conntrack/source.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { type Collected, collect } from '../helpers/collect.js';
import { conntrackNetns, conntrackTool, FLOOD_SYSCTLS, kernelIds } from '../helpers/conntrack-cli.js';
import { fileLab } from '../helpers/lab.js';

const FLOWS = 10_000;
let ns: Netns;
type Reader = Collected<ConntrackRecord>;

fileLab(async (lab) => {
  ns = await conntrackNetns(lab, 'reliable', FLOOD_SYSCTLS);
});

/** New and destroy events of the namespace on a 64 KiB buffer, in reliable mode or not. */
const follow = (reliable: boolean): Reader =>
  collect((hooks) =>
    conntrack({
      events: ['new', 'destroy'],
      netns: ns.name,
      recvBufferBytes: 64 * 1024,
      lossCheckMs: 50,
      reliable,
      ...hooks,
    }),
  );

const flood = (r: ConntrackRecord) => r.orig.dst.startsWith('127.1.') || r.orig.dst.startsWith('127.2.');
/** Event records (not dump or inferred ones) seen more than once, as "type entry" (ids alone collide). */
function repeats(recs: ConntrackRecord[]): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const r of recs) {
    if (r.type === 'dump' || r.resync) continue;
    const k = `${r.type} ${entryKey(r)}`;
    if (seen.has(k)) twice.push(k);
    seen.add(k);
  }
  return twice;
}

describe('reliable conntrack events', () => {
  it('a reliable subscriber gets every flow’s real DESTROY through a flood and a mass delete; a normal one reports loss; nobody gets an event twice', async () => {
    const reliable = follow(true);
    const normal = follow(false);
    try {
      // Both sockets listen before the first flow, so every flow carries the event extension.
      await Promise.all([reliable.ready, normal.ready]);
      const seconds = floodUdpSync(ns.name, { count: FLOWS, base: 1 }); // this event loop is blocked meanwhile
      expect(seconds).toBeGreaterThan(0);
      expect((await kernelIds(ns.name)).length).toBeGreaterThanOrEqual(FLOWS);
      // Blocked again: the DESTROYs of all flows come in one burst.
      execFileSync('ip', ['netns', 'exec', ns.name, 'conntrack', '-D', '-p', 'udp', '--dport', '9'], {
        stdio: 'ignore',
        timeout: 60_000,
      });
      const ends = (r: Reader) => r.recs.filter((x) => x.type === 'destroy' && flood(x));
      await waitFor(() => ends(reliable).length >= FLOWS, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: `${FLOWS} DESTROY events in reliable mode (kernel retries included)`,
      }).catch((err) => {
        throw new Error(`${(err as Error).message}: got ${ends(reliable).length}`, { cause: err });
      });
      await waitFor(() => ends(normal).length >= FLOWS, {
        timeoutMs: 30_000,
        what: 'the normal subscriber to end every flow',
      });
      // Late kernel retries must not come out again. Wait until the kernel holds no undelivered DESTROY (its
      // dying list is empty), then for a marker entry's DESTROY: each socket reads it after every retry.
      await waitFor(async () => (await conntrackTool(ns.name, ['-L', 'dying'], true)).stdout.trim() === '', {
        timeoutMs: 30_000,
        what: 'the kernel to deliver every DESTROY it held (conntrack -L dying empty)',
      });
      const marker = ['-p', 'udp', '-s', '127.9.0.1', '-d', '127.9.0.2', '--sport', '1', '--dport', '2'];
      await conntrackTool(ns.name, ['-I', ...marker, '--timeout', '60']);
      await conntrackTool(ns.name, ['-D', ...marker]);
      const markerEnded = (r: Reader) => r.recs.some((x) => x.type === 'destroy' && x.orig.src === '127.9.0.1');
      await waitFor(() => markerEnded(reliable) && markerEnded(normal), {
        timeoutMs: 30_000,
        what: 'the marker entry’s DESTROY on both sockets',
      });

      // Reliable: every flow ended by a real DESTROY (with counters), none inferred, none twice.
      const rEnds = ends(reliable);
      expect(rEnds.filter((x) => x.resync)).toEqual([]);
      expect(new Set(rEnds.map(entryKey)).size).toBe(FLOWS);
      expect(rEnds.length).toBe(FLOWS);
      expect(rEnds.every((x) => (x.orig.packets ?? 0) >= 1)).toBe(true);
      // Every NEW it did get has its DESTROY.
      const ended = new Set(rEnds.map(entryKey));
      expect(reliable.recs.filter((x) => x.type === 'new' && flood(x) && !ended.has(entryKey(x)))).toEqual([]);

      // Normal: the same overrun loses events, says so, and infers the lost ends.
      const nLoss = normal.notices.filter((n) => n.kind === 'loss').reduce((a, n) => a + (n.count ?? 0), 0);
      expect(nLoss).toBeGreaterThan(0);
      const nEnds = ends(normal);
      expect(nEnds.filter((x) => x.resync).length).toBeGreaterThan(0);
      expect(new Set(nEnds.map(entryKey)).size).toBe(nEnds.length);

      // The kernel resent DESTROYs to both sockets; neither passed an event on twice.
      expect(repeats(reliable.recs)).toEqual([]);
      expect(repeats(normal.recs)).toEqual([]);
      expect(reliable.errors).toEqual([]);
      expect(normal.errors).toEqual([]);
    } finally {
      reliable.unsubscribe();
      normal.unsubscribe();
    }
  });
});
