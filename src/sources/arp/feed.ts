/**
 * One shared arp feed per source config: the dump socket, the event socket
 * (RTNLGRP_NEIGH + RTNLGRP_LINK), the interface/port topology and, while
 * following, the table of visible neighbours. Dumps, resyncs and link
 * refreshes run one at a time ("ops"); events arriving meanwhile are held
 * and applied afterwards, in order.
 */
import { FlowgrabError } from '../../errors.js';
import { NETLINK_ROUTE } from '../../netlink/enums.js';
import { AF_BRIDGE, AF_INET, AF_INET6 } from '../../netlink/nfnetlink.js';
import type { NetlinkMessage } from '../../netlink/nlmsg.js';
import {
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTNLGRP_LINK,
  RTNLGRP_NEIGH,
} from '../../netlink/rtnl/enums.js';
import { decodeLinkMessage } from '../../netlink/rtnl/link.js';
import { decodeNeighMessage } from '../../netlink/rtnl/neigh.js';
import { DropCounter, NetlinkSocket } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Subject } from '../../rx.js';
import { publishNotice, type SourceNotice } from '../notice.js';
import type { ArpConfig } from './options.js';
import type { NeighRecord } from './record.js';
import { dumpLinks, FAMILY, takeSnapshot } from './snapshot.js';
import { NeighTable } from './table.js';
import { Topology } from './topology.js';

export class ArpFeed {
  readonly records = new Subject<NeighRecord>();
  readonly notices = new Subject<SourceNotice>();
  private readonly topo = new Topology();
  private readonly table: NeighTable;
  private readonly families: ReadonlySet<number>;
  private events?: NetlinkSocket;
  private dumper?: NetlinkSocket;
  private timer?: NodeJS.Timeout;
  private chain: Promise<unknown> = Promise.resolve();
  /** Ops queued or running; events are held while non-zero. */
  private busy = 0;
  private held: NetlinkMessage[] = [];
  /** Interfaces a link refresh could not name: no second refresh until a link event names them. */
  private readonly unnamed = new Set<number>();
  private primed = false;
  private resyncQueued = false;
  private dropCounter?: DropCounter;
  private closed = false;

  constructor(
    readonly cfg: ArpConfig,
    private readonly transport: TransportFactory,
  ) {
    this.families = new Set(cfg.family === 'all' ? [AF_INET, AF_INET6] : [FAMILY[cfg.family]]);
    this.table = new NeighTable(this.topo, cfg, (r) => this.records.next(r));
    if (!cfg.events) return;
    // Neighbour and link events are small: an 8 KiB read buffer rather than the 32 KiB dump one.
    const s = NetlinkSocket.open(
      {
        protocol: NETLINK_ROUTE,
        netns: cfg.netns,
        recvBufferBytes: cfg.recvBufferBytes,
        readBufferBytes: 8192,
      },
      transport,
    );
    try {
      s.joinGroup(RTNLGRP_NEIGH);
      s.joinGroup(RTNLGRP_LINK);
    } catch (err) {
      s.close();
      const msg = `joining rtnetlink groups: ${(err as Error).message}`;
      throw new FlowgrabError('FG_ERR_NETLINK', msg, { op: 'bind', cause: err });
    }
    this.events = s;
    this.dropCounter = new DropCounter(s);
    s.onEvent((m) => this.onEvent(m));
    s.onError((err) => this.socketError(err));
    this.timer = setInterval(() => this.checkLoss(), cfg.lossCheckMs);
    this.timer.unref();
  }

  /** While following: learns the table once, silently, so later events can be told apart as new or update. */
  prime(): Promise<void> {
    if (!this.events) return Promise.resolve();
    return this.op(async () => {
      if (!this.primed) await this.reconcile(undefined, false);
    });
  }

  /**
   * Dumps the table: `emit` gets a `dump` record for each visible entry.
   * While following, the same dump reconciles the feed: followers get what
   * changed without an event, flagged `resync`. `dumped` runs once all
   * that is emitted, before held events go out. Resolves with the count.
   */
  dump(emit: (r: NeighRecord) => void, dumped?: () => void): Promise<number> {
    return this.op(async () => {
      const n = await this.reconcile(emit, false);
      dumped?.();
      return n;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.events?.close();
    this.dumper?.close();
    this.table.clear();
    this.held = [];
    this.records.complete();
    this.notices.complete();
  }

  /** Runs `fn` after every op queued before it; events are held meanwhile. */
  private op<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    const run = this.chain.then(() => {
      if (this.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'arp source closed', { op: 'arp' });
      this.drain(false);
      return fn();
    });
    const done = () => {
      if (--this.busy === 0 && !this.closed) this.drain(true);
    };
    // Nothing may wedge the queue: a later op runs whatever became of this one.
    this.chain = run.then(done, done).catch(() => {});
    return run;
  }

  /**
   * Applies held events in order. Before a dump they are older than what
   * it returns, so they go first; before the first dump they are dropped
   * (the dump covers them), and nothing may start another op (`mayRefresh`).
   */
  private drain(mayRefresh: boolean): void {
    if (this.events && !this.primed) {
      this.held = [];
      return;
    }
    const h = this.held;
    this.held = [];
    for (let i = 0; i < h.length; i++) {
      if (!this.apply(h[i], mayRefresh)) {
        this.held = h.slice(i).concat(this.held);
        return;
      }
    }
  }

  private onEvent(m: NetlinkMessage): void {
    if (this.closed) return;
    if (this.busy > 0 || !this.apply(m, true)) this.held.push(m);
  }

  /** Applies one event; false when it must wait for a link refresh (it is kept, with all that follows). */
  private apply(m: NetlinkMessage, mayRefresh: boolean): boolean {
    try {
      if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
        const { kind, entry } = decodeLinkMessage(m);
        this.topo.applyLink(kind, entry);
        if (entry.name !== undefined) this.unnamed.delete(entry.index);
        return true;
      }
      if (m.type !== RTM_NEWNEIGH && m.type !== RTM_DELNEIGH) return true;
      const { kind, entry: e } = decodeNeighMessage(m);
      const now = Date.now();
      if (e.family === AF_BRIDGE) {
        if (this.topo.applyFdb(kind, e) && e.master !== undefined) this.table.portMoved(e.master, e.lladdr, now);
      } else if (!this.families.has(e.family) || e.dst === undefined) {
        return true;
      } else if (kind === 'delete') {
        this.table.deleted(e, now);
      } else {
        let ifname = this.topo.name(e.ifindex);
        if (ifname === undefined && !this.unnamed.has(e.ifindex)) {
          if (mayRefresh) this.refreshLinks(e.ifindex);
          return false;
        }
        ifname ??= `if${e.ifindex}`;
        this.table.changed(this.table.record('update', e, ifname, now));
      }
    } catch (err) {
      this.badMessage(err as Error);
    }
    return true;
  }

  /** An event named an interface we do not know: re-read the links before going on. */
  private refreshLinks(ifindex: number): void {
    this.op(async () => {
      try {
        this.topo.resetLinks(await dumpLinks(this.socket(), (err) => this.badMessage(err)));
      } finally {
        if (this.topo.name(ifindex) === undefined) this.unnamed.add(ifindex);
      }
    }).catch((err) => this.notice({ kind: 'warning', message: `link dump failed: ${(err as Error).message}` }));
  }

  private socket(): NetlinkSocket {
    this.dumper ??= NetlinkSocket.open(
      { protocol: NETLINK_ROUTE, netns: this.cfg.netns, recvBufferBytes: 1 << 20 },
      this.transport,
    );
    return this.dumper;
  }

  /** Dumps links, FDB and neighbours; `emit` gets the visible entries; while following, the table is reconciled. */
  private async reconcile(emit: ((r: NeighRecord) => void) | undefined, afterLoss: boolean): Promise<number> {
    const snap = await takeSnapshot(this.socket(), this.cfg.family, (err) => this.badMessage(err));
    this.topo.resetLinks(snap.links);
    this.topo.resetFdb(snap.fdb);
    const now = Date.now();
    const recs: NeighRecord[] = [];
    for (const e of snap.neighbours) {
      if (!this.families.has(e.family) || e.dst === undefined) continue;
      const rec = this.table.record('dump', e, this.topo.name(e.ifindex) ?? `if${e.ifindex}`, now);
      if (this.table.visible(rec)) recs.push(rec);
    }
    if (emit) for (const r of recs) emit({ ...r });
    if (this.events) {
      this.table.reconcile(recs, !this.primed, now);
      this.primed = true;
    }
    if (afterLoss) {
      this.notice({ kind: 'resync', count: recs.length, message: `resynchronised: ${recs.length} neighbours` });
    }
    return recs.length;
  }

  private notice(n: Omit<SourceNotice, 'source' | 'ts'>): void {
    const full: SourceNotice = { source: 'arp', ts: Date.now(), ...n };
    if (this.cfg.netns) full.netns = this.cfg.netns;
    publishNotice(full, this.notices);
  }

  private badMessage(err: Error): void {
    this.notice({ kind: 'loss', where: 'decode', count: 1, message: `undecodable rtnetlink message: ${err.message}` });
  }

  /** A datagram we could not read whole is an event lost: count it and resync. */
  private socketError(err: Error): void {
    if ((err as { op?: string }).op === 'recvmsg') {
      this.notice({ kind: 'loss', where: 'kernel', count: 1, message: `event socket: ${err.message}; resyncing` });
      this.resync();
    } else {
      this.notice({ kind: 'warning', message: `event socket: ${err.message}` });
    }
  }

  private checkLoss(): void {
    if (!this.dropCounter || this.closed) return;
    const lost = this.dropCounter.take();
    if (lost === 0) return;
    this.notice({
      kind: 'loss',
      where: 'kernel',
      count: lost,
      message: `kernel dropped ${lost} neighbour/link events (receive buffer full); resyncing`,
    });
    this.resync();
  }

  /** After loss: re-dump and emit what changed unseen, deletes included. One queued resync covers further loss. */
  private resync(): void {
    if (this.resyncQueued || this.closed) return;
    this.resyncQueued = true;
    this.op(() => {
      this.resyncQueued = false;
      return this.reconcile(undefined, true);
    }).catch((err) => this.notice({ kind: 'warning', message: `resync dump failed: ${(err as Error).message}` }));
  }
}
