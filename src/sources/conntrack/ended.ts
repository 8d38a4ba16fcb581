/**
 * Which conntrack entry a record is about, and the entries that ended
 * recently, so that an entry is reported destroyed once.
 *
 * The kernel's entry id is a 32-bit hash, not unique: with 50 000 live
 * entries two share an id in about three runs out of ten. An entry is
 * therefore its id together with (a hash of) its original tuple and zone (`entryKey`),
 * so the end of one entry never hides the end, or the NEW, of another.
 *
 * A second DESTROY for the same entry comes from the kernel redelivering it
 * (ctnetlink resends a DESTROY whose broadcast failed on any socket that set
 * NETLINK_BROADCAST_SEND_ERROR, ours in reliable mode or another program's,
 * and every listener gets the resend) or from the real event arriving after a
 * resync already inferred the entry's end.
 */
import { KeySet } from './key-set.js';
import type { ConntrackRecord } from './record.js';

/** What `entryKey` reads of a record. */
export type EntryFields = Pick<ConntrackRecord, 'id' | 'protonum' | 'orig' | 'zone'>;

const FNV_PRIME = 0x01000193;

function mixString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

/**
 * An entry's identity as one number (a Map key as cheap as the id alone):
 * the id times 2^20 plus 20 bits of a hash of protocol, original addresses,
 * ports (or ICMP type, code and id) and zones. Two live entries share it only
 * if they share the id (about 0.3 pairs at 50 000 entries) and then also 20
 * hash bits (one in a million of those): never in practice.
 */
export function entryKey(r: EntryFields): number {
  const o = r.orig;
  let h = mixString(mixString(0x811c9dc5 ^ r.protonum, o.src), o.dst);
  const ports = o.icmp
    ? o.icmp.id | (o.icmp.type << 16) | (o.icmp.code << 24)
    : ((o.sport ?? 0) << 16) | (o.dport ?? 0);
  h = Math.imul(h ^ ports, FNV_PRIME);
  h = Math.imul(h ^ ((r.zone ?? 0) | ((o.zone ?? 0) << 16)), FNV_PRIME);
  // murmur3's finaliser: every input bit reaches the 20 bits kept.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return r.id * 0x100000 + (h & 0xfffff);
}

/** Enough for a whole-table `conntrack -D` burst on a large router; 24 bytes a key at most (6 MiB when full). */
export const ENDED_DEFAULT_CAP = 1 << 18;

/** The keys (`entryKey`) of entries that ended recently, bounded: the oldest is forgotten first. */
export class EndedEntries {
  private readonly keys: KeySet;

  constructor(cap = ENDED_DEFAULT_CAP) {
    this.keys = new KeySet(cap);
  }

  has(key: number): boolean {
    return this.keys.has(key);
  }

  /** False when `key` was there already. */
  add(key: number): boolean {
    return this.keys.add(key);
  }

  /** The entry is alive again (the kernel gives a new entry with the same tuple at the same address the same id). */
  revive(key: number): void {
    this.keys.delete(key);
  }

  get size(): number {
    return this.keys.size;
  }

  clear(): void {
    this.keys.clear();
  }
}
