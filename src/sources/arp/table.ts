/**
 * The neighbours a following feed has reported, by ip+interface, and the
 * rules that turn kernel messages and re-dumps into new/update/delete
 * records. "Visible" means usable, or anything with includeUnusable: `new`
 * is entering the visible set, `update` a change inside it, `delete` leaving it.
 */
import type { NeighEntry } from '../../netlink/rtnl/neigh.js';
import { nudStateNames, toNeighRecord } from './build.js';
import type { NeighRecord } from './record.js';
import type { Topology } from './topology.js';

const keyOf = (r: { ifindex: number; ip: string }) => `${r.ifindex}|${r.ip}`;
const macKey = (ifindex: number, mac: string) => `${ifindex}|${mac}`;

/** What makes a visible entry worth an `update`. */
const changed = (a: NeighRecord, b: NeighRecord) =>
  a.mac !== b.mac ||
  a.state.join() !== b.state.join() ||
  a.router !== b.router ||
  a.usable !== b.usable ||
  a.port !== b.port;

export class NeighTable {
  /** Latest record of each visible entry, never with the resync flag. */
  private readonly known = new Map<string, NeighRecord>();
  /**
   * The keys of `known` by interface and MAC, for a bridge port move: any LAN host can make the bridge learn a
   * new MAC per frame (each one a "move"), and scanning every neighbour for each cost O(table) a frame.
   */
  private readonly byMac = new Map<string, Set<string>>();

  constructor(
    private readonly topo: Topology,
    private readonly opts: { includeUnusable: boolean; netns?: string },
    private readonly out: (r: NeighRecord) => void,
  ) {}

  get size(): number {
    return this.known.size;
  }

  visible(r: NeighRecord): boolean {
    return r.usable || this.opts.includeUnusable;
  }

  /** The record for a kernel entry (with a dst). The port sticks while the MAC does: FDB entries age out. */
  record(type: NeighRecord['type'], e: NeighEntry, ifname: string, now: number): NeighRecord {
    const r = toNeighRecord(type, e, ifname, now, this.topo.port(e.ifindex, e.lladdr), this.opts.netns);
    if (r.port === undefined) {
      const prev = this.known.get(keyOf(r));
      if (prev?.port !== undefined && prev.mac === r.mac) r.port = prev.port;
    }
    return r;
  }

  /** RTM_DELNEIGH: a `delete` when the entry was visible. */
  deleted(e: NeighEntry, now: number): void {
    const key = keyOf({ ifindex: e.ifindex, ip: e.dst ?? '' });
    const prev = this.known.get(key);
    if (prev) this.forget(key, prev, now, nudStateNames(e.state), false);
  }

  /** RTM_NEWNEIGH: creation or state change, already made into a record. */
  changed(rec: NeighRecord): void {
    const key = keyOf(rec);
    const prev = this.known.get(key);
    const visible = this.visible(rec);
    if (!prev) {
      if (visible) this.remember(key, { ...rec, type: 'new' }, false);
    } else if (!visible) {
      this.forget(key, prev, rec.ts, rec.state, false);
    } else if (changed(prev, rec)) {
      this.remember(key, { ...rec, type: 'update' }, false);
    }
  }

  /** A bridge learned a MAC on another port: visible entries with that MAC on that bridge moved. */
  portMoved(bridge: number, mac: string | undefined, now: number): void {
    const port = this.topo.port(bridge, mac);
    const keys = mac === undefined ? undefined : this.byMac.get(macKey(bridge, mac));
    if (port === undefined || !keys) return;
    for (const key of [...keys]) {
      const r = this.known.get(key) as NeighRecord;
      if (r.port !== port) this.remember(key, { ...r, type: 'update', ts: now, port }, false);
    }
  }

  /**
   * A full dump's visible records. `silent`: just learn them (the first
   * dump). Otherwise emit what changed without an event, flagged `resync`,
   * deletes included.
   */
  reconcile(recs: NeighRecord[], silent: boolean, now: number): void {
    const seen = new Set<string>();
    for (const rec of recs) {
      const key = keyOf(rec);
      seen.add(key);
      const prev = this.known.get(key);
      if (silent) this.put(key, { ...rec, type: 'new' });
      else if (!prev) this.remember(key, { ...rec, type: 'new' }, true);
      else if (changed(prev, rec)) this.remember(key, { ...rec, type: 'update' }, true);
    }
    if (silent) return;
    for (const [key, prev] of this.known) if (!seen.has(key)) this.forget(key, prev, now, prev.state, true);
  }

  clear(): void {
    this.known.clear();
    this.byMac.clear();
  }

  /** Sets `known` and its index. */
  private put(key: string, r: NeighRecord): void {
    const prev = this.known.get(key);
    if (prev && prev.mac !== r.mac) this.unindex(key, prev);
    this.known.set(key, r);
    if (r.mac === undefined) return;
    const k = macKey(r.ifindex, r.mac);
    let keys = this.byMac.get(k);
    if (!keys) this.byMac.set(k, (keys = new Set()));
    keys.add(key);
  }

  private unindex(key: string, r: NeighRecord): void {
    if (r.mac === undefined) return;
    const k = macKey(r.ifindex, r.mac);
    const keys = this.byMac.get(k);
    if (keys?.delete(key) && keys.size === 0) this.byMac.delete(k);
  }

  private remember(key: string, r: NeighRecord, resync: boolean): void {
    this.put(key, r);
    this.out(resync ? { ...r, resync: true } : { ...r });
  }

  /** The last record reported, as a `delete`: it names the MAC and port that went away. */
  private forget(key: string, prev: NeighRecord, now: number, state: NeighRecord['state'], resync: boolean): void {
    this.known.delete(key);
    this.unindex(key, prev);
    const r: NeighRecord = { ...prev, type: 'delete', ts: now, state, usable: false };
    if (resync) r.resync = true;
    this.out(r);
  }
}
