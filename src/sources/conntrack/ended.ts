/**
 * Which conntrack entry a record is about, and the entries that ended
 * recently, so that an entry is reported destroyed once.
 *
 * The kernel's entry id is a 32-bit hash, not unique: with 50 000 live
 * entries two share an id in about three runs out of ten. An entry is
 * therefore its id together with its original tuple and zone (`entryKey`),
 * so the end of one entry never hides the end, or the NEW, of another.
 *
 * A second DESTROY for the same entry comes from the kernel redelivering it
 * (ctnetlink resends a DESTROY whose broadcast failed on any socket that set
 * NETLINK_BROADCAST_SEND_ERROR, ours in reliable mode or another program's,
 * and every listener gets the resend) or from the real event arriving after a
 * resync already inferred the entry's end.
 */
import type { ConntrackRecord } from './record.js';

/**
 * An entry's identity: id, protocol, original addresses and ports (or ICMP
 * type, code and id), and zones. Stable for the entry's life; two live
 * entries never share it.
 */
export function entryKey(r: ConntrackRecord): string {
  const o = r.orig;
  const ports = o.icmp ? `i${o.icmp.type}.${o.icmp.code}.${o.icmp.id}` : `${o.sport ?? ''}.${o.dport ?? ''}`;
  return `${r.id}|${r.protonum}|${o.src}|${o.dst}|${ports}|${r.zone ?? ''}|${o.zone ?? ''}`;
}

/** Enough for a whole-table `conntrack -D` burst on a large router; about 150 bytes an entry. */
export const ENDED_DEFAULT_CAP = 1 << 18;

/** The keys (`entryKey`) of entries that ended recently, bounded: the oldest is forgotten first. */
export class EndedEntries {
  // A Set iterates in insertion order: the first key is the oldest, evicted first.
  private readonly keys = new Set<string>();

  constructor(private readonly cap = ENDED_DEFAULT_CAP) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    if (this.keys.size > this.cap) {
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
    }
  }

  /** The entry is alive again (the kernel gives a new entry with the same tuple at the same address the same id). */
  revive(key: string): void {
    this.keys.delete(key);
  }

  get size(): number {
    return this.keys.size;
  }

  clear(): void {
    this.keys.clear();
  }
}
