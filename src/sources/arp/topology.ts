/**
 * What the arp feed knows besides neighbours: interface names (link dump and
 * RTM_NEWLINK/DELLINK) and the bridge port behind which each bridge learned
 * each MAC (AF_BRIDGE FDB dump and events).
 */
import { AF_BRIDGE } from '../../netlink/nfnetlink.js';
import { NUD_PERMANENT } from '../../netlink/rtnl/enums.js';
import type { LinkEntry } from '../../netlink/rtnl/link.js';
import type { NeighEntry } from '../../netlink/rtnl/neigh.js';

const fdbKey = (bridge: number, mac: string) => `${bridge}/${mac}`;

export class Topology {
  private readonly names = new Map<number, string>();
  /** `${bridge ifindex}/${mac}` → port ifindex. */
  private readonly ports = new Map<string, number>();

  name(ifindex: number): string | undefined {
    return this.names.get(ifindex);
  }

  /** The name of the port `bridge` learned `mac` on; undefined when `bridge` is not a bridge or has not learned it. */
  port(bridge: number, mac: string | undefined): string | undefined {
    if (mac === undefined) return undefined;
    const p = this.ports.get(fdbKey(bridge, mac));
    return p === undefined ? undefined : this.names.get(p);
  }

  /** Replaces every name with a fresh link dump. */
  resetLinks(links: LinkEntry[]): void {
    this.names.clear();
    for (const l of links) if (l.name !== undefined) this.names.set(l.index, l.name);
  }

  /**
   * A link event. A bridge sends RTM_DELLINK with family AF_BRIDGE when a
   * port merely leaves it: only AF_UNSPEC deletions remove a link.
   */
  applyLink(kind: 'new' | 'delete', l: LinkEntry): void {
    if (kind === 'new') {
      if (l.name !== undefined) this.names.set(l.index, l.name);
      return;
    }
    if (l.family === AF_BRIDGE) return;
    this.names.delete(l.index);
    for (const [k, port] of this.ports) if (port === l.index || k.startsWith(`${l.index}/`)) this.ports.delete(k);
  }

  /** Replaces the learned ports with a fresh AF_BRIDGE dump. */
  resetFdb(entries: NeighEntry[]): void {
    this.ports.clear();
    for (const e of entries) this.applyFdb('new', e);
  }

  /**
   * An FDB entry. Only MACs learned (or configured static) behind a port
   * count; the bridge's own addresses (PERMANENT, or on the bridge itself) do
   * not. Returns true when a MAC is now behind a different port than before.
   */
  applyFdb(kind: 'new' | 'delete', e: NeighEntry): boolean {
    if (e.master === undefined || !e.lladdr || e.master === e.ifindex || e.state & NUD_PERMANENT) return false;
    const k = fdbKey(e.master, e.lladdr);
    const before = this.ports.get(k);
    if (kind === 'delete') {
      // Aged out, or gone with its port. Records already reported keep the port they had.
      if (before === e.ifindex) this.ports.delete(k);
      return false;
    }
    this.ports.set(k, e.ifindex);
    return before !== e.ifindex;
  }
}
