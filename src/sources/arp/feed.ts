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
import { NetlinkSocket } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Subject } from '../../rx.js';
import { Fanout } from '../fanout.js';
import { Follower } from '../follow.js';
import { publishNotice, type SourceNotice } from '../notice.js';
import type { ArpConfig } from './options.js';
import type { NeighRecord } from './record.js';
import { dumpLinks, FAMILY, takeSnapshot } from './snapshot.js';
import { NeighTable } from './table.js';
import { Topology } from './topology.js';

export class ArpFeed {
  readonly records = new Fanout<NeighRecord>();
  readonly notices = new Subject<SourceNotice>();
  private readonly topo = new Topology();
  private readonly table: NeighTable;
  private readonly families: ReadonlySet<number>;
  private events?: NetlinkSocket;
  private dumper?: NetlinkSocket;
  /** Dumps, resyncs and link refreshes run one at a time in it; events arriving meanwhile wait. */
  private readonly follower = new Follower<NetlinkMessage>({
    source: 'arp',
    apply: (m, mayRefresh) => this.apply(m, mayRefresh),
    // Before the first dump, held events are dropped: the dump covers them.
    discardHeld: () => this.events !== undefined && !this.primed,
    resync: () => this.reconcile(undefined),
    resyncMessage: (count) => `${count} neighbours`,
    notice: (n) => this.notice(n),
    fail: (err) => this.records.error(err),
  });
  /** Interfaces a link refresh could not name: no second refresh until a link event names them. */
  private readonly unnamed = new Set<number>();
  private primed = false;
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
        batched: cfg.batchedReceive,
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
    s.onEvent((m) => {
      if (!this.closed) this.follower.event(m);
    });
    this.follower.watch(s, {
      lossCheckMs: cfg.lossCheckMs,
      describe: (lost) => ({
        message: `kernel dropped ${lost} neighbour/link events (receive buffer full); resyncing`,
        resync: true,
      }),
    });
  }

  /** While following: learns the table once, silently, so later events can be told apart as new or update. */
  prime(): Promise<void> {
    if (!this.events) return Promise.resolve();
    return this.follower.op(async () => {
      if (!this.primed) await this.reconcile(undefined);
    });
  }

  /**
   * Dumps the table: `emit` gets a `dump` record for each visible entry.
   * While following, the same dump reconciles the feed: followers get what
   * changed without an event, flagged `resync`. `dumped` runs once all
   * that is emitted, before held events go out. Resolves with the count.
   */
  dump(emit: (r: NeighRecord) => void, dumped?: () => void): Promise<number> {
    return this.follower.op(async () => {
      const n = await this.reconcile(emit);
      dumped?.();
      return n;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.follower.close();
    this.events?.close();
    this.dumper?.close();
    this.table.clear();
    this.records.complete();
    this.notices.complete();
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
    this.follower
      .op(async () => {
        try {
          this.topo.resetLinks(await dumpLinks(this.socket(), (err) => this.badMessage(err)));
        } finally {
          if (this.topo.name(ifindex) === undefined) this.unnamed.add(ifindex);
        }
      })
      .catch((err) => this.notice({ kind: 'warning', message: `link dump failed: ${(err as Error).message}` }));
  }

  private socket(): NetlinkSocket {
    this.dumper ??= NetlinkSocket.open(
      { protocol: NETLINK_ROUTE, netns: this.cfg.netns, recvBufferBytes: 1 << 20, pulled: true },
      this.transport,
    );
    return this.dumper;
  }

  /** Dumps links, FDB and neighbours; `emit` gets the visible entries; while following, the table is reconciled. */
  private async reconcile(emit: ((r: NeighRecord) => void) | undefined): Promise<number> {
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
}
