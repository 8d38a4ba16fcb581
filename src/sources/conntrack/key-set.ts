/**
 * A bounded set of entry keys (`entryKey`: integers in [0, 2^53)) that
 * forgets the oldest first, with no allocation per operation: the keys sit
 * in a ring of typed memory in insertion order, found through an
 * open-addressing table of ring positions and hashes. The per-event bookkeeping of a
 * busy feed (every NEW and DESTROY) made a `Set` of boxed numbers one of its
 * larger costs; this grows in steps up to its bound and then stays put.
 */

const EMPTY = -1;
const FIRST_CAPACITY = 1024;

export class KeySet {
  /** Keys in insertion order from `tail` on, circularly; EMPTY where deleted or never used. */
  private ring = new Float64Array(0);
  /**
   * Open addressing (linear probing), two words a slot: the key's ring position + 1 (0 = free) and its
   * 32-bit hash. A probe compares hashes in the slot's own cache line and reads the ring only when they
   * match, and moving a slot needs no key: its home is in its hash.
   */
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
    return this.live > 0 && this.find(key, hashOf(key)) >= 0;
  }

  /** Adds `key`; false (and nothing changes) when it is already there. One probe when the ring has room. */
  add(key: number): boolean {
    const h = hashOf(key);
    let i = h & this.mask;
    const t = this.table;
    if (this.live > 0)
      for (let v = t[2 * i]; v !== 0; v = t[2 * i]) {
        if (t[2 * i + 1] === h && this.ring[v - 1] === key) return false;
        i = (i + 1) & this.mask;
      }
    // Making room (a rebuild, or forgetting the oldest key) moves slots: probe for a free one again after.
    let moved = false;
    if (this.used === this.ring.length) {
      this.makeRoom();
      moved = true;
    }
    const at = this.tail;
    const old = this.ring[at];
    if (old !== EMPTY) {
      this.remove(this.find(old, hashOf(old)));
      moved = true;
    }
    this.ring[at] = key;
    this.tail = at + 1 === this.ring.length ? 0 : at + 1;
    if (this.used < this.ring.length) this.used++;
    if (moved) i = this.free(h);
    this.table[2 * i] = at + 1;
    this.table[2 * i + 1] = h;
    this.live++;
    return true;
  }

  delete(key: number): void {
    const i = this.live > 0 ? this.find(key, hashOf(key)) : -1;
    if (i < 0) return;
    this.ring[this.table[2 * i] - 1] = EMPTY;
    this.remove(i);
  }

  clear(): void {
    this.ring = new Float64Array(0);
    this.table = new Int32Array(0);
    this.mask = 0;
    this.tail = this.used = this.live = 0;
  }

  /** The table slot holding `key` (whose hash is `h`), or -1. */
  private find(key: number, h: number): number {
    const t = this.table;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const v = t[2 * i];
      if (v === 0) return -1;
      if (t[2 * i + 1] === h && this.ring[v - 1] === key) return i;
    }
  }

  /** The first free slot from the home of hash `h` on. */
  private free(h: number): number {
    let i = h & this.mask;
    while (this.table[2 * i] !== 0) i = (i + 1) & this.mask;
    return i;
  }

  /** Frees table slot `hole` and shifts back the keys probed past it (no tombstones). */
  private remove(hole: number): void {
    const t = this.table;
    let i = hole;
    for (let j = (i + 1) & this.mask; t[2 * j] !== 0; j = (j + 1) & this.mask) {
      const k = t[2 * j + 1] & this.mask;
      // The key at j may move to i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        t[2 * i] = t[2 * j];
        t[2 * i + 1] = t[2 * j + 1];
        i = j;
      }
    }
    t[2 * i] = 0;
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
    this.table = new Int32Array(2 * size);
    this.mask = size - 1;
    this.tail = w === capacity ? 0 : w;
    this.used = w;
    this.live = 0;
    for (let p = 0; p < w; p++) {
      const h = hashOf(ring[p]);
      const i = this.free(h);
      this.table[2 * i] = p + 1;
      this.table[2 * i + 1] = h;
      this.live++;
    }
  }
}

/** 32 bits of a key (an integer below 2^53) for the table: its home slot is the low bits. */
function hashOf(key: number): number {
  const lo = key >>> 0;
  const hi = (key / 4294967296) | 0;
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
}
