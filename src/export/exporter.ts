/**
 * Wiring: a record stream (conntrack, or any flow graph's output) into a
 * sink. Conntrack records go through a FlowTracker (records at DESTROY,
 * active-timeout updates, shutdown flush); anything else goes to the sink
 * as it is (NDJSON and MQTT take any record; IPFIX and NetFlow v9 count
 * what they cannot express as rejected).
 */
import { lastValueFrom, type Observable, type Subscription, toArray } from 'rxjs';
import { FlowgrabError } from '../errors.js';
import type { CtEventName } from '../sources/conntrack/options.js';
import type { ConntrackRecord } from '../sources/conntrack/record.js';
import { conntrack } from '../sources/conntrack/source.js';
import type { NoticeObserver } from '../sources/notice.js';
import type { ReadyObserver } from '../sources/ready.js';
import { readSysctl } from '../sources/sysctl.js';
import type { FlowSink, SinkStats } from './sink.js';
import { FlowTracker, isConntrackRecord } from './tracker.js';

/** Options of exportRecords(): active timeout, final dump, error reporting. */
export interface ExportOptions {
  /** Seconds between records of a long-running flow (default 60; 0: only when it ends). */
  activeTimeoutS?: number;
  /** How often the source dumps counters (ms); the tracker uses it to time active records. */
  pollIntervalMs?: number;
  /** At shutdown: the current table, so pending growth is exported (conntrack flows only). */
  finalDump?: () => Promise<ConntrackRecord[]>;
  /**
   * The final dump holds exactly the flows of the record stream (the whole table being exported): flows in
   * it that were never tracked are exported too. Off when the stream is a filtered graph's.
   */
  finalDumpAdopts?: boolean;
  /** Errors of the record stream. */
  onError?: (err: unknown) => void;
}

/** Counters of an exporter: its sink's and its flow tracker's. */
export interface ExporterStats {
  sink: SinkStats;
  tracker: FlowTracker['counts'] & { tracking: number };
}

/** A running export (exportRecords, exportConntrack): counters and close(). */
export interface FlowExporter {
  /** Counters so far. */
  stats(): ExporterStats;
  /** Exports every tracked flow's pending growth, flushes and closes the sink. Idempotent. */
  close(): Promise<void>;
}

export function activeTimeoutMs(s: number | undefined): number {
  const v = s ?? 60;
  if (!Number.isFinite(v) || v < 0)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `activeTimeoutS must be a number of seconds ≥ 0, got ${v}`);
  return v * 1000;
}

/** Feeds `records` into `sink`; conntrack records are tracked into flows first. */
export function exportRecords(records: Observable<unknown>, sink: FlowSink, o: ExportOptions = {}): FlowExporter {
  const tracker = new FlowTracker({
    activeTimeoutMs: activeTimeoutMs(o.activeTimeoutS),
    pollIntervalMs: o.pollIntervalMs,
    emit: (f) => sink.write(f),
  });
  let sub: Subscription | undefined = records.subscribe({
    next: (r) => (isConntrackRecord(r) ? tracker.push(r) : sink.write(r)),
    error: (err) => o.onError?.(err),
  });
  let closing: Promise<void> | undefined;
  return {
    stats: () => ({ sink: sink.stats(), tracker: { ...tracker.counts, tracking: tracker.size } }),
    close: () => {
      closing ??= (async () => {
        // The final dump runs while events still arrive, so a flow ending meanwhile still reports its DESTROY.
        let current: ConntrackRecord[] = [];
        tracker.closing();
        // A filtered graph's dump only refreshes tracked flows: with none, it is not needed.
        if (o.finalDump && (o.finalDumpAdopts || tracker.size > 0)) {
          try {
            current = await o.finalDump();
          } catch (err) {
            o.onError?.(err);
          }
        }
        sub?.unsubscribe();
        sub = undefined;
        tracker.flush(current, Date.now(), o.finalDumpAdopts ?? false);
        await sink.close();
      })();
      return closing;
    },
  };
}

/** Options of exportConntrack(): the namespace, address family, notices, sysctls. */
export interface ConntrackExportOptions
  extends Omit<ExportOptions, 'finalDump' | 'finalDumpAdopts' | 'pollIntervalMs'> {
  netns?: string;
  family?: 'ipv4' | 'ipv6' | 'all';
  notices?: NoticeObserver;
  /** Told what resolves once the exporter's event socket listens (see ReadyObserver). */
  ready?: ReadyObserver;
  /** Set nf_conntrack_events/acct/timestamp in the namespace so every flow reports its end with counters. */
  setSysctls?: boolean;
}

/**
 * The dump interval for an active timeout: the timeout itself, at least 1 s.
 * Without one there are no dumps at all: a flow is exported once, from its
 * DESTROY, which carries the final counters, and dumping the whole table
 * every interval would cost every flow a decode per interval for nothing.
 */
export function pollFor(activeMs: number): number {
  return activeMs > 0 ? Math.max(1000, activeMs) : 0;
}

/**
 * The events the exporter follows. A DESTROY carries the flow's final
 * counters (accounting) and its start and stop times (timestamps), so when
 * the kernel timestamps flows, NEW events add nothing but cost: each is a
 * datagram to read and decode. Long flows are followed by the dumps; a flow
 * that starts and ends between two dumps is known from its DESTROY alone.
 * Without timestamps, NEW events are where a flow's start time comes from.
 */
export function conntrackEvents(netns: string | undefined, setSysctls: boolean): CtEventName[] {
  return setSysctls || readSysctl('net.netfilter.nf_conntrack_timestamp', netns) === '1'
    ? ['destroy']
    : ['new', 'destroy'];
}

/** Exports the conntrack table of `netns` to `sink`: the current flows, then every flow as it runs and ends. */
export function exportConntrack(sink: FlowSink, o: ConntrackExportOptions = {}): FlowExporter {
  const activeMs = activeTimeoutMs(o.activeTimeoutS);
  const pollIntervalMs = pollFor(activeMs);
  const common = { netns: o.netns, family: o.family ?? 'all' } as const;
  const source = conntrack({
    ...common,
    dump: true,
    events: conntrackEvents(o.netns, o.setSysctls ?? false),
    pollIntervalMs,
    notices: o.notices,
    ready: o.ready,
    setEventsSysctl: o.setSysctls ?? false,
    setAccounting: o.setSysctls ?? false,
  });
  return exportRecords(source, sink, {
    ...o,
    pollIntervalMs,
    finalDump: () => lastValueFrom(conntrack({ ...common, dump: true }).pipe(toArray())),
    finalDumpAdopts: true,
  });
}
