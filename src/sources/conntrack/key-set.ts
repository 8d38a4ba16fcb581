/**
 * A bounded set of entry keys (`entryKey`: integers in [0, 2^53)) that
 * forgets the oldest first, with no allocation per operation: the keys sit
 * in a ring of typed memory in insertion order, found through an
 * open-addressing table of ring positions. The per-event bookkeeping of a
 * busy feed (every NEW and DESTROY) made a `Set` of boxed numbers one of its
 * larger costs; this grows in steps up to its bound and then stays put.
 */

const EMPTY = -1;
const FIRST_CAPACITY = 1024;

export class KeySet {
  /** Keys in insertion order from `tail` on, circularly; EMPTY where deleted or never used. */
  private ring = new Float64Array(0);
  /** Ring position + 1 of each key, by its hash (linear probing; 0 = free). */
  private table = new Int32Array(0);
  private mask = 0;
  /** Where the next key goes; the oldest key is there too once the ring is full. */
  private tail = 0;
  /** Ring slots written since the last rebuild (the ring is full when it reaches its length). */
  private used = 0;
  private live = 0;

  /** `cap`: the most keys kept; the oldest is forgotten first (after a delete, possibly up to an eighth sooner). */
  constructor(readonly cap: number) {
    if (!(cap >= 1)) throw new RangeError(`KeySet capacity ${cap}`);
  }

  get size(): number {
    return this.live;
  }

  has(key: number): boolean {
    return this.live > 0 && this.find(key) >= 0;
  }

  add(key: number): void {
    if (this.has(key)) return;
    if (this.used === this.ring.length) this.makeRoom();
    const at = this.tail;
    const old = this.ring[at];
    if (old !== EMPTY) this.remove(this.find(old));
    this.ring[at] = key;
    this.tail = at + 1 === this.ring.length ? 0 : at + 1;
    if (this.used < this.ring.length) this.used++;
    let i = this.home(key);
    while (this.table[i] !== 0) i = (i + 1) & this.mask;
    this.table[i] = at + 1;
    this.live++;
  }

  delete(key: number): void {
    const i = this.live > 0 ? this.find(key) : -1;
    if (i < 0) return;
    this.ring[this.table[i] - 1] = EMPTY;
    this.remove(i);
  }

  clear(): void {
    this.ring = new Float64Array(0);
    this.table = new Int32Array(0);
    this.mask = 0;
    this.tail = this.used = this.live = 0;
  }

  private home(key: number): number {
    const lo = key >>> 0;
    const hi = (key / 4294967296) | 0;
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) & this.mask;
  }

  /** The table slot holding `key`, or -1. */
  private find(key: number): number {
    for (let i = this.home(key); ; i = (i + 1) & this.mask) {
      const v = this.table[i];
      if (v === 0) return -1;
      if (this.ring[v - 1] === key) return i;
    }
  }

  /** Frees table slot `hole` and shifts back the keys probed past it (no tombstones). */
  private remove(hole: number): void {
    const t = this.table;
    let i = hole;
    for (let j = (i + 1) & this.mask; t[j] !== 0; j = (j + 1) & this.mask) {
      const k = this.home(this.ring[t[j] - 1]);
      // The key at j may move to i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        t[i] = t[j];
        i = j;
      }
    }
    t[i] = 0;
    this.live--;
  }

  /**
   * The ring is full: grow it (up to `cap`), or drop the deleted slots when
   * they are an eighth of it; otherwise the oldest key is overwritten.
   */
  private makeRoom(): void {
    const n = this.ring.length;
    if (n < this.cap) this.rebuild(Math.min(this.cap, Math.max(FIRST_CAPACITY, n * 2)));
    else if (n - this.live >= n / 8) this.rebuild(n);
  }

  /** Copies the live keys, oldest first, into a ring of `capacity` and indexes them afresh. */
  private rebuild(capacity: number): void {
    const old = this.ring;
    const n = old.length;
    const ring = new Float64Array(capacity).fill(EMPTY);
    let w = 0;
    for (let k = 0; k < n; k++) {
      const key = old[(this.tail + k) % n];
      if (key !== EMPTY) ring[w++] = key;
    }
    let size = 1;
    while (size < capacity * 2) size <<= 1;
    this.ring = ring;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    this.tail = w === capacity ? 0 : w;
    this.used = w;
    this.live = 0;
    for (let p = 0; p < w; p++) {
      let i = this.home(ring[p]);
      while (this.table[i] !== 0) i = (i + 1) & this.mask;
      this.table[i] = p + 1;
      this.live++;
    }
  }
}
