/**
 * Whole-table bursts against the real kernel, with the batched
 * reader. 60 000 flows end in one `conntrack -D` while the event loop is
 * blocked: a reliable subscriber gets every entry's real DESTROY once (the
 * oracle is `conntrack -L` before the delete: `conntrack -E` itself loses
 * events in such bursts, docs/kernel.md), and a normal one never emits an
 * event twice. Then two overruns in quick succession (a flood, and a delete
 * while the first resync runs) on a small buffer: after both resyncs every
 * entry announced is ended exactly once, real or inferred, and no event is
 * emitted twice. Entries are told apart by id and tuple (ids collide).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { entryKey } from '../../src/sources/conntrack/ended.js';
import type { ConntrackOptionsInput } from '../../src/sources/conntrack/options.js';
import type { ConntrackRecord } from '../../src/sources/conntrack/record.js';
import { conntrack } from '../../src/sources/conntrack/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { type Collected, collect } from '../helpers/collect.js';
import { conntrackNetns, FLOOD_SYSCTLS, type KernelCtEntry, kernelTable } from '../helpers/conntrack-cli.js';
import { fileLab } from '../helpers/lab.js';

const FLOWS = 60_000;
let ns: Netns;
type Reader = Collected<ConntrackRecord>;

fileLab(async (lab) => {
  ns = await conntrackNetns(lab, 'ctburst', FLOOD_SYSCTLS);
});

/** New and destroy events of the namespace through the batched reader, `opts` on top. */
const follow = (opts: ConntrackOptionsInput): Reader =>
  collect((hooks) =>
    conntrack({ events: ['new', 'destroy'], netns: ns.name, lossCheckMs: 20, batchedReceive: true, ...opts, ...hooks }),
  );

/** A kernel listing's entry, keyed as its record is. */
const kernelKey = (e: KernelCtEntry) => entryKey(e);

/** Events (not dump records) emitted more than once for one entry, as "type key". */
function repeats(recs: readonly ConntrackRecord[]): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const r of recs) {
    if (r.type === 'dump') continue;
    const k = `${r.type} ${entryKey(r)}`;
    if (seen.has(k)) twice.push(k);
    seen.add(k);
  }
  return twice;
}

const count = (rs: readonly Reader[], kind: SourceNotice['kind']) =>
  rs.map((r) => r.notices.filter((n) => n.kind === kind).length);

/** Deletes the flood's flows (dport 9) with the event loop blocked: their DESTROYs come in one burst. */
function deleteBlocked(): void {
  execFileSync('ip', ['netns', 'exec', ns.name, 'conntrack', '-D', '-p', 'udp', '--dport', '9'], {
    stdio: 'ignore',
    timeout: 60_000,
  });
}

/**
 * Waits until the kernel has handed out every pending event (it counts the
 * dying entries that wait for a DESTROY redelivery, which no listing shows),
 * then until each reader has seen a marker flow's DESTROY: everything
 * queued before it was read.
 */
async function drained(readers: Reader[], base: number): Promise<void> {
  await waitFor(
    async () => Number((await ns.exec(['conntrack', '-C'])).stdout.trim()) === (await kernelTable(ns.name)).length,
    { timeoutMs: 60_000, intervalMs: 200, what: 'the kernel to deliver every pending DESTROY' },
  );
  floodUdpSync(ns.name, { count: 1, base });
  const marker = `127.${base}.0.1`;
  await ns.exec(['conntrack', '-D', '-p', 'udp', '-d', marker]);
  await waitFor(() => readers.every((r) => r.recs.some((x) => x.type === 'destroy' && x.orig.dst === marker)), {
    timeoutMs: 30_000,
    what: "each reader to read up to the marker flow's DESTROY",
  });
}

describe('conntrack bursts', () => {
  it('60 000 DESTROYs in one burst: a reliable subscriber gets each once, a normal one never twice', async () => {
    // DESTROYs only: the flood's NEWs would cost minutes of CPU on a loaded machine and prove nothing here.
    const reliable = follow({ events: ['destroy'], reliable: true, recvBufferBytes: 2 << 20 });
    const normal = follow({ events: ['destroy'] });
    try {
      // Both sockets exist (and joined their groups) before the first flow: every flow carries the event extension.
      floodUdpSync(ns.name, { count: FLOWS, base: 1 });
      const before = (await kernelTable(ns.name, ['-p', 'udp', '--dport', '9'])).map(kernelKey);
      expect(before.length).toBe(FLOWS);
      deleteBlocked();

      const ends = (r: Reader) => r.recs.filter((x) => x.type === 'destroy' && x.orig.dst.startsWith('127.1.'));
      await waitFor(() => ends(reliable).length >= FLOWS, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: `${FLOWS} DESTROYs in reliable mode`,
      }).catch((err) => {
        throw new Error(`${(err as Error).message}: got ${ends(reliable).length}`, { cause: err });
      });
      await drained([reliable, normal], 250);

      // Reliable: exactly the entries `conntrack -L` listed, each ended by its real DESTROY (counters, no resync).
      const rEnds = ends(reliable);
      expect(rEnds.filter((x) => x.resync)).toEqual([]);
      expect(rEnds.length).toBe(FLOWS);
      expect(new Set(rEnds.map(entryKey))).toEqual(new Set(before));
      expect(rEnds.every((x) => (x.orig.packets ?? 0) >= 1)).toBe(true);

      // Normal: whatever it lost it said, and each entry it ended, it ended once.
      const nEnds = ends(normal);
      expect(new Set(nEnds.map(entryKey)).size).toBe(nEnds.length);
      const nLost = normal.notices.filter((n) => n.kind === 'loss').length;
      if (nEnds.length < FLOWS) expect(nLost).toBeGreaterThan(0);

      expect(repeats(reliable.recs)).toEqual([]);
      expect(repeats(normal.recs)).toEqual([]);
      expect([reliable.errors, normal.errors]).toEqual([[], []]);
    } finally {
      reliable.unsubscribe();
      normal.unsubscribe();
    }
  });

  it('two overruns in quick succession on a small buffer: after both resyncs every entry ends once, no event twice', async () => {
    const r = follow({ recvBufferBytes: 64 * 1024 });
    try {
      // Overrun 1: a flood larger than the receive ring while the event loop is blocked.
      floodUdpSync(ns.name, { count: FLOWS, base: 11 });
      await waitFor(() => count([r], 'loss')[0] >= 1, { timeoutMs: 10_000, what: 'the first loss' });
      // Overrun 2, as the first resync starts: the whole table ends in one burst, the loop blocked again.
      deleteBlocked();
      await waitFor(() => count([r], 'loss')[0] >= 2, { timeoutMs: 10_000, what: 'the second loss' });
      await drained([r], 251);
      // The marker's DESTROY may come out of the events held during the first resync (the delete ran while it
      // dumped): the resync that read the table after the delete must also be over.
      await waitFor(() => r.notices.some((n) => n.kind === 'resync' && (n.count ?? FLOWS) < 100), {
        timeoutMs: 30_000,
        what: 'a resync that found the flows deleted',
      });

      // Every entry announced (NEW or a dump record) ended exactly once, by its DESTROY or inferred at a resync.
      const flood = r.recs.filter((x) => x.orig.dst.startsWith('127.11.'));
      const announced = new Set(flood.filter((x) => x.type !== 'destroy').map(entryKey));
      const ended = flood.filter((x) => x.type === 'destroy').map(entryKey);
      expect(announced.size).toBeGreaterThan(0);
      const endedSet = new Set(ended);
      expect([...announced].filter((k) => !endedSet.has(k))).toEqual([]);
      expect(endedSet.size).toBe(ended.length);
      expect(repeats(r.recs)).toEqual([]);
      expect(r.errors).toEqual([]);
    } finally {
      r.unsubscribe();
    }
  });
});
