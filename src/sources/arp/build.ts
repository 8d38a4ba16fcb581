/** NeighRecords from decoded kernel entries: state names, usability, the record itself. No zod here (see record.ts). */
import { AF_INET6 } from '../../netlink/nfnetlink.js';
import {
  NTF_PROXY,
  NTF_ROUTER,
  NUD_DELAY,
  NUD_FAILED,
  NUD_INCOMPLETE,
  NUD_NOARP,
  NUD_PERMANENT,
  NUD_PROBE,
  NUD_REACHABLE,
  NUD_STALE,
  NUD_STATE_BITS,
  type NudStateName,
  RTN_MULTICAST,
} from '../../netlink/rtnl/enums.js';
import type { NeighEntry } from '../../netlink/rtnl/neigh.js';
import type { NeighRecord, NeighRecordType, NeighStateName } from './record.js';

const stateCache = new Map<number, NudStateName[]>();

/** NUD bits → names; arrays are shared between records, hence frozen. */
export function nudStateNames(bits: number): NeighStateName[] {
  let s = stateCache.get(bits);
  if (!s) {
    const names = NUD_STATE_BITS.filter(([bit]) => bits & bit).map(([, name]) => name);
    s = Object.freeze(names.length ? names : ['NONE']) as NudStateName[];
    if (stateCache.size < 256) stateCache.set(bits, s);
  }
  return s;
}

const RESOLVED = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;
const UNRESOLVED = NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP;

/** A device: resolved to a MAC, not multicast/NOARP, not a proxy entry. */
export function isUsable(e: NeighEntry): boolean {
  return (
    (e.state & RESOLVED) !== 0 &&
    (e.state & UNRESOLVED) === 0 &&
    e.type !== RTN_MULTICAST &&
    (e.flags & NTF_PROXY) === 0 &&
    !!e.lladdr
  );
}

/** `e` must have a `dst` (ARP/NDP entries always do). */
export function toNeighRecord(
  type: NeighRecordType,
  e: NeighEntry,
  ifname: string,
  now: number,
  port?: string,
  netns?: string,
): NeighRecord {
  // Keys in schema order, the optional ones only when present (NDJSON reads best that way).
  const r: NeighRecord = {
    type,
    ts: now,
    family: e.family === AF_INET6 ? 'ipv6' : 'ipv4',
    ifindex: e.ifindex,
    ifname,
    ip: e.dst ?? '',
    ...(e.lladdr ? { mac: e.lladdr } : {}),
    state: nudStateNames(e.state),
    router: (e.flags & NTF_ROUTER) !== 0,
    ...(port === undefined ? {} : { port }),
    usable: isUsable(e),
  };
  if (netns !== undefined) r.netns = netns;
  return r;
}
