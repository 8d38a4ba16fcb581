/**
 * What a conntrack feed knows of each entry, by `entryKey` (id and original
 * tuple: ids alone collide): the live ones with their last record and
 * counters (for deltas and for ends a dump no longer shows), the ones that
 * ended (so each end is reported once), and, for a feed that keeps no live
 * table, the ones whose NEW went out (so a kernel repeat is dropped).
 */
import { EndedEntries, entryKey } from './ended.js';
import type { ConntrackRecord, Counters } from './record.js';

interface Tracked {
  rec: ConntrackRecord;
  /** Last counters seen for the entry, for deltas. */
  orig?: Counters;
  reply?: Counters;
  /** A NEW went out for this entry: another one is a repeat. */
  announced?: boolean;
}

const counters = (e: ConntrackRecord['orig']): Counters | undefined =>
  e.packets === undefined ? undefined : { packets: e.packets, bytes: e.bytes ?? 0 };

function growth(now: Counters | undefined, before: Counters | undefined): Counters {
  if (!now) return { packets: 0, bytes: 0 };
  // Counters that went backwards were zeroed by someone else: count from zero.
  if (!before || now.packets < before.packets || now.bytes < before.bytes) return now;
  return { packets: now.packets - before.packets, bytes: now.bytes - before.bytes };
}

export class EntryTable {
  private readonly live = new Map<number, Tracked>();
  /** Entries reported ended (by the kernel, a dump or a resync): each end is reported once. */
  private readonly ended = new EndedEntries();
  /** Without a live table: the entries whose NEW went out recently (bounded, like `ended`). */
  private readonly announced = new EndedEntries();
  /** Repeated events (kernel redelivery) that were not passed on. */
  repeats = 0;

  /**
   * `keepsLive`: only when the feed learns of every end (DESTROY events or
   * polling). A feed that follows NEWs alone could never prune the live table
   * (it grew with every flow ever seen), and keeping every record alive cost
   * more than decoding it; it remembers the NEWs it passed on instead.
   */
  constructor(readonly keepsLive: boolean) {}

  /** An event: false when it repeats one already passed on (same entry, same NEW or DESTROY); else tracked. */
  event(rec: ConntrackRecord): boolean {
    const key = entryKey(rec);
    const fresh = !this.keepsLive
      ? rec.type !== 'new' || this.announced.add(key)
      : !(rec.type === 'new' && this.live.get(key)?.announced) && this.track(rec, key);
    if (!fresh) this.repeats++;
    return fresh;
  }

  /**
   * Keeps the last record and counters of a live entry (an event or a dump's); sets `delta` on a DESTROY
   * with counters. False for the DESTROY of an entry already ended (one probe of the set says so).
   */
  track(rec: ConntrackRecord, key = entryKey(rec)): boolean {
    const prev = this.live.get(key);
    const o = counters(rec.orig);
    const r = counters(rec.reply);
    if (rec.type === 'destroy') {
      if (!this.ended.add(key)) return false;
      this.live.delete(key);
      if (o) rec.delta = { orig: growth(o, prev?.orig), reply: growth(r, prev?.reply) };
      return true;
    }
    // Alive again: the kernel gives a new entry with the same tuple at the same address the same id.
    if (rec.type === 'new' || rec.type === 'dump') this.ended.revive(key);
    const announced = rec.type === 'new' || (prev?.announced ?? false);
    this.live.set(key, { rec, orig: o ?? prev?.orig, reply: r ?? prev?.reply, announced });
    return true;
  }

  /** A polled dump's entry: its `update` record with the counter growth, or undefined when nothing grew. */
  polled(r: ConntrackRecord, key = entryKey(r)): ConntrackRecord | undefined {
    const prev = this.live.get(key);
    const o = counters(r.orig);
    const rp = counters(r.reply);
    const delta = { orig: growth(o, prev?.orig), reply: growth(rp, prev?.reply) };
    this.ended.revive(key);
    this.live.set(key, { rec: { ...r, type: 'update' }, orig: o, reply: rp, announced: prev?.announced });
    if (prev && delta.orig.packets === 0 && delta.reply.packets === 0) return undefined;
    return { ...r, type: 'update', delta };
  }

  /**
   * The ends no event reported: every live entry a dump did not show (`seen`) and that is not `spared`,
   * each said once, like a real DESTROY, to `emit`.
   */
  inferEnds(
    seen: ReadonlySet<number>,
    spared: ReadonlySet<number>,
    resync: boolean,
    emit: (r: ConntrackRecord) => void,
  ): void {
    const now = Date.now();
    for (const [key, t] of this.live) {
      if (seen.has(key) || spared.has(key)) continue;
      this.live.delete(key);
      this.ended.add(key);
      const rec: ConntrackRecord = { ...t.rec, type: 'destroy', ts: now };
      if (resync) rec.resync = true;
      emit(rec);
    }
  }

  clear(): void {
    this.live.clear();
    this.ended.clear();
    this.announced.clear();
  }
}
