/**
 * FlowTracker: conntrack records in, flow records out. Conntrack events
 * carry counters only at DESTROY, so long flows are followed with periodic
 * dumps (absolute counters; the kernel's are never zeroed) and every record
 * exported carries the growth since the previous one of that flow.
 *
 * - DESTROY: the flow's last record, reason `end`. A flow no dump or NEW
 *   event showed (it started and ended between dumps) is not tracked at
 *   all: its DESTROY becomes its one record.
 * - Active timeout: a flow whose counters grew and whose last record is at
 *   least `activeTimeoutMs` old gets a record with reason `active`.
 * - Idle: a flow that stopped moving is not reported again until it ends;
 *   when dumps saw it, its end is the last time one saw its counters grow,
 *   not the moment the kernel expired it, and a final record with nothing
 *   new is skipped, so a collector never sees empty flows or idle time
 *   counted as activity. Without dumps a flow's end is the kernel's stop time.
 * - `flush()` (shutdown): every tracked flow's pending growth goes out,
 *   reason `forced`.
 */
import type { ConntrackRecord } from '../sources/conntrack/record.js';
import { AgedMap } from '../util/aged-map.js';
import { type ExportFlow, type FlowEndReason, flowFromConntrack, tcpFlagsOfState } from './flow.js';

export interface TrackerOptions {
  /** Records for flows still running at least this often (0: only at the end). */
  activeTimeoutMs: number;
  /** How often the counters are dumped: an active record may come up to half of this early. */
  pollIntervalMs?: number;
  /** Flows followed at most (default MAX_TRACKED_FLOWS; a kernel table holds nf_conntrack_max). */
  maxFlows?: number;
  emit: (f: ExportFlow) => void;
}

interface Counts {
  op: number;
  ob: number;
  rp: number;
  rb: number;
}

interface Tracked {
  rec: ConntrackRecord;
  /** Start of the span the next record covers. */
  from: number;
  exported: Counts;
  seen: Counts;
  /** When the counters were last seen growing (or the flow started). */
  active: number;
  flags: number;
  reported: boolean;
}

const ZERO: Counts = { op: 0, ob: 0, rp: 0, rb: 0 };

function countsOf(r: ConntrackRecord): Counts | undefined {
  if (r.orig.packets === undefined) return undefined;
  return { op: r.orig.packets, ob: r.orig.bytes ?? 0, rp: r.reply.packets ?? 0, rb: r.reply.bytes ?? 0 };
}

const grew = (a: Counts, b: Counts) => a.op !== b.op || a.ob !== b.ob || a.rp !== b.rp || a.rb !== b.rb;

/** A count a record may carry: absent, or a finite number ≥ 0. */
const count = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0);

/** A tuple with its addresses (text) and counts. */
function isEnd(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Record<string, unknown>;
  return typeof x.src === 'string' && typeof x.dst === 'string' && count(x.packets) && count(x.bytes);
}

/**
 * A record the tracker can follow: a conntrack record's shape, checked as far as the tracker reads it. Records
 * from any graph come here (nats, replay: anyone who can publish chooses them): `orig: null` crashed the export.
 * Others go to the sink, which counts what it cannot encode as rejected.
 */
export function isConntrackRecord(r: unknown): r is ConntrackRecord {
  const c = r as ConntrackRecord;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.id === 'number' &&
    typeof c.ts === 'number' &&
    (c.type === 'dump' || c.type === 'new' || c.type === 'update' || c.type === 'destroy') &&
    isEnd(c.orig) &&
    isEnd(c.reply) &&
    count(c.start) &&
    count(c.stop)
  );
}

/** Flows followed at most by default: past it the longest followed is exported as it stands and forgotten. */
export const MAX_TRACKED_FLOWS = 500_000;

export class FlowTracker {
  /** Oldest first: a full tracker evicts the flow followed longest in O(1) (a Map walked its deleted slots). */
  private readonly flows = new AgedMap<number, Tracked>();
  private readonly activeMs: number;
  private readonly slackMs: number;
  private endedWhileClosing: Set<number> | undefined;
  readonly counts = { flows: 0, records: 0, active: 0, ended: 0, forced: 0, skippedEmpty: 0, evicted: 0 };
  private readonly maxFlows: number;

  constructor(private readonly o: TrackerOptions) {
    this.activeMs = o.activeTimeoutMs;
    this.slackMs = (o.pollIntervalMs ?? 0) / 2;
    this.maxFlows = Math.max(1, o.maxFlows ?? MAX_TRACKED_FLOWS);
  }

  /** Flows being followed now. */
  get size(): number {
    return this.flows.size;
  }

  push(r: ConntrackRecord): void {
    let t = this.flows.get(r.id);
    if (!t && r.type === 'destroy') {
      // The common case: a flow that lived and ended between dumps (no NEW followed). Its DESTROY says it all.
      this.ended(r);
      return;
    }
    const c = countsOf(r);
    if (!t) t = this.track(r);
    else t.rec = r;
    if (r.protonum === 6) t.flags |= tcpFlagsOfState(r.state);
    if (c) {
      // Counters that went backwards were zeroed by someone else: what is there now is new.
      if (c.op < t.seen.op || c.ob < t.seen.ob || c.rp < t.seen.rp || c.rb < t.seen.rb) t.exported = ZERO;
      if (grew(c, t.seen)) t.active = r.type === 'destroy' ? (r.stop ?? r.ts) : r.ts;
      t.seen = c;
    }
    if (r.type === 'destroy') {
      this.flows.delete(r.id);
      this.endedWhileClosing?.add(r.id);
      this.export(t, 'end', t.active);
      return;
    }
    if (this.activeMs > 0 && c && r.ts - t.from >= this.activeMs - this.slackMs && grew(t.seen, t.exported))
      this.export(t, 'active', t.active);
  }

  /**
   * Shutdown, step 1 (before the final dump is taken): from now on the ids
   * of flows that end are remembered, so a flow the dump still saw but whose
   * DESTROY came meanwhile is not exported twice.
   */
  closing(): void {
    this.endedWhileClosing ??= new Set();
  }

  /**
   * Shutdown: exports the pending growth of every flow, with counters from
   * `current` (a fresh dump). With `adopt`, flows the dump has and the
   * tracker does not (born since the last dump, when NEW events are not
   * followed) are exported whole; without, the dump only refreshes the
   * counters of tracked flows. The tracker is empty after.
   */
  flush(current: readonly ConntrackRecord[] = [], now = Date.now(), adopt = false): void {
    for (const r of current) {
      let t = this.flows.get(r.id);
      const c = countsOf(r);
      if (!t) {
        if (!adopt || this.endedWhileClosing?.has(r.id)) continue;
        t = this.track(r);
      }
      if (!c) continue;
      t.rec = r;
      if (grew(c, t.seen)) t.active = now;
      t.seen = c;
    }
    for (const t of this.flows.values()) this.export(t, 'forced', t.active);
    this.flows.clear();
    this.endedWhileClosing = undefined;
  }

  private track(r: ConntrackRecord): Tracked {
    if (this.flows.size >= this.maxFlows) {
      // Full (records of a million ids that never end): the one followed longest goes out as it stands.
      const oldest = this.flows.shift() as Tracked;
      this.counts.evicted++;
      this.export(oldest, 'forced', oldest.active);
    }
    const start = r.start ?? r.ts;
    const t: Tracked = { rec: r, from: start, exported: ZERO, seen: ZERO, active: start, flags: 0, reported: false };
    this.flows.set(r.id, t);
    this.counts.flows++;
    return t;
  }

  /** A flow never seen before its DESTROY: one record with everything (zeros when accounting is off). */
  private ended(r: ConntrackRecord): void {
    this.endedWhileClosing?.add(r.id);
    this.counts.flows++;
    this.counts.records++;
    this.counts.ended++;
    const o = r.orig;
    const rp = r.reply;
    const start = r.start ?? r.ts;
    // Its end is when it last moved: the kernel's stop time, or its start when it never counted anything.
    const moved = !!(o.packets || o.bytes || rp.packets || rp.bytes);
    const end = moved ? (r.stop ?? r.ts) : start;
    this.o.emit(
      flowFromConntrack(r, {
        packets: o.packets ?? 0,
        bytes: o.bytes ?? 0,
        rpackets: rp.packets ?? 0,
        rbytes: rp.bytes ?? 0,
        start: Math.min(start, end),
        end,
        reason: 'end',
      }),
    );
  }

  private export(t: Tracked, reason: FlowEndReason, end: number): void {
    const d = {
      op: t.seen.op - t.exported.op,
      ob: t.seen.ob - t.exported.ob,
      rp: t.seen.rp - t.exported.rp,
      rb: t.seen.rb - t.exported.rb,
    };
    if (t.reported && d.op === 0 && d.ob === 0 && d.rp === 0 && d.rb === 0) {
      this.counts.skippedEmpty++;
      return;
    }
    const from = Math.min(t.from, end);
    const f = flowFromConntrack(t.rec, {
      packets: d.op,
      bytes: d.ob,
      rpackets: d.rp,
      rbytes: d.rb,
      start: from,
      end,
      reason,
      tcpFlags: t.rec.protonum === 6 ? t.flags : 0,
    });
    t.exported = t.seen;
    t.from = end;
    t.reported = true;
    this.counts.records++;
    if (reason === 'active') this.counts.active++;
    else if (reason === 'end') this.counts.ended++;
    else this.counts.forced++;
    this.o.emit(f);
  }
}
