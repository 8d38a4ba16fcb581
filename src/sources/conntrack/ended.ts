/**
 * The ids of entries that ended recently, so that an entry is reported
 * destroyed once. A second DESTROY for the same id comes from the kernel
 * redelivering it (ctnetlink resends a DESTROY whose broadcast failed on any
 * socket that set NETLINK_BROADCAST_SEND_ERROR, ours in reliable mode or
 * another program's, and every listener gets the resend) or from the real
 * event arriving after a resync already inferred the entry's end.
 */

/** Enough for a whole-table `conntrack -D` burst on a large router; about 40 bytes an id. */
export const ENDED_IDS_DEFAULT_CAP = 1 << 18;

export class EndedIds {
  // A Set iterates in insertion order: the first id is the oldest, evicted first.
  private readonly ids = new Set<number>();

  constructor(private readonly cap = ENDED_IDS_DEFAULT_CAP) {}

  has(id: number): boolean {
    return this.ids.has(id);
  }

  add(id: number): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    if (this.ids.size > this.cap) {
      const oldest = this.ids.values().next().value as number;
      this.ids.delete(oldest);
    }
  }

  /** The id is alive again (the kernel reuses an id for the same tuple at the same address). */
  revive(id: number): void {
    this.ids.delete(id);
  }

  get size(): number {
    return this.ids.size;
  }

  clear(): void {
    this.ids.clear();
  }
}
