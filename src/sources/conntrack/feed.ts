/**
 * One shared conntrack feed per source config: the event socket, loss
 * detection with resync, and delta polling. Subscribers (source.ts) share it
 * through a reference-counted registry; each gets its own initial dump.
 */

import { DecodeError, FlowgrabError } from '../../errors.js';
import { receiveWorkers } from '../../netlink/batched.js';
import {
  NFNLGRP_CONNTRACK_DESTROY,
  NFNLGRP_CONNTRACK_NEW,
  NFNLGRP_CONNTRACK_UPDATE,
} from '../../netlink/conntrack/enums.js';
import { NETLINK_NETFILTER } from '../../netlink/enums.js';
import { NetlinkSocket, type PayloadListener } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Subject } from '../../rx.js';
import { Fanout } from '../fanout.js';
import { Follower } from '../follow.js';
import { publishNotice, type SourceNotice } from '../notice.js';
import { readSysctl, writeSysctl } from '../sysctl.js';
import { conntrackRecordAt } from './decode.js';
import { requestDump, runDump } from './dump.js';
import { entryKey } from './ended.js';
import { EntryTable } from './entries.js';
import type { ConntrackConfig } from './options.js';
import type { ConntrackRecord } from './record.js';

/**
 * Dump sockets read on a worker at once in the process (ConntrackFeed.onDumpSocket); dumps that start while
 * this many are open read on libuv's pool. Each holds a thread and an 8 MiB ring: a flowgrabd user with 64
 * flows in as many namespaces must not make it start 64 threads.
 */
export const DUMP_WORKERS = 2;
let dumpWorkers = 0;

const GROUPS = { new: NFNLGRP_CONNTRACK_NEW, update: NFNLGRP_CONNTRACK_UPDATE, destroy: NFNLGRP_CONNTRACK_DESTROY };

export class ConntrackFeed {
  readonly records = new Fanout<ConntrackRecord>();
  readonly notices = new Subject<SourceNotice>();
  /** Live, ended and announced entries; a live table only when the feed learns of every end (entries.ts). */
  private readonly table: EntryTable;
  private readonly timers: NodeJS.Timeout[] = [];
  private events?: NetlinkSocket;
  private dumper?: NetlinkSocket;
  /** Dumps running on `dumper` (the first dump, resyncs, polls, a subscriber's own dump). */
  private dumping = 0;
  /** `dumper` is read on a worker (and counts in dumpWorkers). */
  private dumperOnWorker = false;
  /** Resyncs run one at a time; events arriving meanwhile wait in it. */
  private readonly follower = new Follower<ConntrackRecord>({
    source: 'conntrack',
    apply: (rec) => {
      // A repeat of an event already passed on (kernel redelivery) is dropped.
      if (!this.closed && this.table.event(rec)) this.records.next(rec);
      return true;
    },
    resync: (held) => this.resyncDump(held),
    resyncMessage: (count) => `${count} entries in the table`,
    notice: (n) => this.notice(n),
    fail: (err) => this.records.error(err),
  });
  private polling = false;
  private closed = false;

  constructor(
    readonly cfg: ConntrackConfig,
    private readonly transport: TransportFactory,
  ) {
    this.table = new EntryTable(cfg.events.includes('destroy') || cfg.pollIntervalMs > 0);
    if (cfg.events.length > 0) {
      // One event per datagram, a few hundred bytes each: a small read buffer saves a 32 KiB allocation per event.
      const s = NetlinkSocket.open(
        {
          protocol: NETLINK_NETFILTER,
          netns: cfg.netns,
          recvBufferBytes: cfg.recvBufferBytes,
          readBufferBytes: 8192,
          reliable: cfg.reliable,
          batched: cfg.batchedReceive,
        },
        transport,
      );
      this.events = s;
      s.onEventPayload((b, start, end, type, flags) => this.onEvent(b, start, end, type, flags));
      try {
        for (const ev of cfg.events) s.joinGroup(GROUPS[ev]);
      } catch (err) {
        s.close();
        throw new FlowgrabError('FG_ERR_NETLINK', `joining conntrack event groups: ${(err as Error).message}`, {
          op: 'bind',
          cause: err,
        });
      }
      this.follower.watch(s, { lossCheckMs: cfg.lossCheckMs, describe: (lost) => this.describeLoss(lost) });
    }
    if (cfg.pollIntervalMs > 0) this.timers.push(setInterval(() => void this.poll(), cfg.pollIntervalMs));
    for (const t of this.timers) t.unref();
  }

  /**
   * Checks the conntrack sysctls for a new subscriber, fixing them when that
   * subscriber asks to (its own options, not the first subscriber's).
   */
  checkSysctls(asked: Pick<ConntrackConfig, 'setEventsSysctl' | 'setAccounting'> = this.cfg): void {
    const ns = this.cfg.netns;
    if (this.events && this.cfg.events.includes('destroy')) {
      const ev = readSysctl('net.netfilter.nf_conntrack_events', ns);
      if (ev !== undefined && ev !== '1') {
        if (asked.setEventsSysctl) {
          writeSysctl('net.netfilter.nf_conntrack_events', '1', ns);
          this.notice({ kind: 'warning', message: `nf_conntrack_events was ${ev}; set to 1` });
        } else {
          this.notice({
            kind: 'warning',
            message: `nf_conntrack_events=${ev}: flows created while nobody listened never send DESTROY (use setEventsSysctl / --set-events-sysctl)`,
          });
        }
      }
    }
    if (asked.setAccounting) {
      for (const key of ['net.netfilter.nf_conntrack_acct', 'net.netfilter.nf_conntrack_timestamp']) {
        if (readSysctl(key, ns) !== '1') writeSysctl(key, '1', ns);
      }
    } else if (
      readSysctl('net.netfilter.nf_conntrack_acct', ns) === '0' &&
      (this.cfg.pollIntervalMs > 0 || this.cfg.dump)
    ) {
      this.notice({
        kind: 'warning',
        message: 'nf_conntrack_acct=0: entries carry no packet/byte counters (use setAccounting / --accounting)',
      });
    }
  }

  /** Dumps the table through the feed's dump socket, emitting records to `emit`. Resolves with the count. */
  dump(emit: (r: ConntrackRecord) => void): Promise<number> {
    return this.onDumpSocket((sock) =>
      runDump(
        sock,
        this.cfg,
        (r) => {
          if (this.table.keepsLive) this.table.track(r);
          emit(r);
        },
        (err) => this.badEntry(err),
      ),
    );
  }

  /**
   * Dumps the table, handing each entry's ctnetlink message to `onPayload` undecoded (`flowgrab conntrack
   * --dump --json` writes them straight out). A DecodeError it throws is an undecodable entry: noticed, and
   * the dump goes on. Only for a feed that keeps no table (dump() fills that).
   */
  dumpPayloads(onPayload: PayloadListener): Promise<void> {
    if (this.table.keepsLive)
      return Promise.reject(new Error('dumpPayloads: this feed keeps a table, which dump() fills'));
    return this.onDumpSocket((sock) =>
      requestDump(sock, this.cfg, (b, start, end, type, flags) => {
        try {
          onPayload(b, start, end, type, flags);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          this.badEntry(err);
        }
      }),
    );
  }

  /**
   * Runs `dump` on the socket every dump of this feed goes through (table dumps, resyncs, polls), opened
   * when none is open. It is read on a worker thread (receiveWorkers.dumps), which reads the next parts
   * while the main thread decodes, however the scheduler places the two: read on libuv's pool, whose
   * threads take turns, a dump took 112-159 ms or more depending on which CPU the reading thread woke up
   * on. When the last dump on it ends, that socket closes: its worker then waits idle for the next dump
   * (batched.ts) instead of holding a ring for the feed's life. Past DUMP_WORKERS such sockets in the
   * process, or when told so, the socket is read on the pool, and stays open.
   */
  private async onDumpSocket<T>(dump: (sock: NetlinkSocket) => Promise<T>): Promise<T> {
    // A closed feed opens nothing: a socket opened now would outlive it.
    if (this.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'conntrack feed closed', { op: 'dump' });
    if (!this.dumper) {
      const onWorker = receiveWorkers.dumps && dumpWorkers < DUMP_WORKERS;
      this.dumper = NetlinkSocket.open(
        {
          protocol: NETLINK_NETFILTER,
          netns: this.cfg.netns,
          recvBufferBytes: 1 << 20,
          ...(onWorker ? { batched: true, lingerMs: 0, fullDatagrams: true } : { pulled: true }),
        },
        this.transport,
      );
      this.dumperOnWorker = onWorker;
      if (onWorker) dumpWorkers++;
    }
    const sock = this.dumper;
    this.dumping++;
    try {
      return await dump(sock);
    } finally {
      if (--this.dumping === 0 && this.dumperOnWorker && this.dumper === sock) this.closeDumper();
    }
  }

  /** Closes the dump socket; one read on a worker gives its place back. */
  private closeDumper(): void {
    const sock = this.dumper;
    if (!sock) return;
    this.dumper = undefined;
    if (this.dumperOnWorker) dumpWorkers--;
    this.dumperOnWorker = false;
    sock.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.follower.close();
    this.events?.close();
    this.closeDumper();
    this.table.clear();
    this.records.complete();
    this.notices.complete();
  }

  private notice(n: Omit<SourceNotice, 'source' | 'ts'>): void {
    const full: SourceNotice = { source: 'conntrack', ts: Date.now(), ...n };
    if (this.cfg.netns) full.netns = this.cfg.netns;
    publishNotice(full, this.notices);
  }

  private badEntry(err: Error): void {
    this.notice({ kind: 'loss', where: 'decode', count: 1, message: `undecodable conntrack entry: ${err.message}` });
  }

  private accepts(r: ConntrackRecord): boolean {
    const c = this.cfg;
    if (c.family !== 'all' && r.family !== c.family) return false;
    if (c.zone !== undefined && (r.zone ?? 0) !== c.zone) return false;
    if (c.mark !== undefined && ((r.mark ?? 0) & (c.markMask ?? 0xffffffff)) !== c.mark) return false;
    return true;
  }

  /** One event, read in place (`b[start, end)` is its payload). */
  private onEvent(b: Buffer, start: number, end: number, type: number, flags: number): void {
    let rec: ConntrackRecord;
    try {
      rec = conntrackRecordAt(b, start, end, type, flags, Date.now(), this.cfg.netns);
      if (rec.type === 'dump' || !this.accepts(rec)) return;
    } catch (err) {
      this.badEntry(err as Error);
      return;
    }
    this.follower.event(rec);
  }

  /** What lost events mean: in reliable mode the kernel retries DESTROYs, so only a table view needs a resync. */
  private describeLoss(lost: number): { message: string; resync: boolean } {
    if (this.cfg.reliable) {
      // NEW/UPDATE changes the kernel folds into the entry's next event.
      const resync = this.cfg.events.some((e) => e !== 'destroy');
      return {
        message: `kernel could not queue ${lost} conntrack events (receive buffer full); reliable mode: ends are retried${resync ? ', resyncing for the rest' : ''}`,
        resync,
      };
    }
    return { message: `kernel dropped ${lost} conntrack events (receive buffer full); resyncing`, resync: true };
  }

  /**
   * After loss: re-dump, emit what is there, infer destroys for what vanished
   * (held events go out after). A feed without a table (no DESTROY events, no
   * polling) infers none: its subscribers asked for no ends.
   */
  private async resyncDump(held: readonly ConntrackRecord[]): Promise<number> {
    const seen = new Set<number>();
    const count = await this.dump((r) => {
      r.resync = true;
      seen.add(entryKey(r));
      this.records.next(r);
    });
    // Entries born during the resync, or whose real DESTROY is waiting, need no inferred one. In
    // reliable mode the kernel retries every DESTROY until we read it: the real one, with counters, will come.
    const born = new Set(held.filter((r) => r.type === 'new' || r.type === 'destroy').map(entryKey));
    if (!this.cfg.reliable && this.table.keepsLive) this.table.inferEnds(seen, born, true, (r) => this.records.next(r));
    return count;
  }

  /** Delta polling: a dump whose records become `update`s with counter growth. */
  private async poll(): Promise<void> {
    if (this.polling || this.follower.holding || this.closed) return;
    this.polling = true;
    const seen = new Set<number>();
    try {
      await this.onDumpSocket((sock) =>
        runDump(
          sock,
          this.cfg,
          (r) => {
            const key = entryKey(r);
            seen.add(key);
            const update = this.table.polled(r, key);
            if (update) this.records.next(update);
          },
          (err) => this.badEntry(err),
        ),
      );
      // Without destroy events nobody else says an entry is gone.
      if (!this.cfg.events.includes('destroy'))
        this.table.inferEnds(seen, new Set(), false, (r) => this.records.next(r));
    } catch (err) {
      this.notice({ kind: 'warning', message: `counter poll failed: ${(err as Error).message}` });
    } finally {
      this.polling = false;
    }
  }
}
