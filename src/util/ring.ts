/**
 * A first-in first-out queue in a ring: push and shift take the same time
 * however long it is. An array's shift() moves every element once the array
 * is too large for V8 to trim its start in place (past about 16 000): a
 * queue of 300 000 records dropping its oldest took 60 µs per record.
 */

/** The ring's first length, and the most an emptied one keeps (powers of two). */
const MIN = 16;
const SHRINK_ABOVE = 4096;

export class Ring<T> {
  /** Its length a power of two: grown (doubled) when full, back to MIN when emptied after a burst. */
  private slots: (T | undefined)[] = new Array(MIN);
  /** Items taken (head) and put (tail) so far: the ring holds tail − head of them, at index & (length − 1). */
  private head = 0;
  private tail = 0;

  get length(): number {
    return this.tail - this.head;
  }

  push(x: T): void {
    if (this.tail - this.head === this.slots.length) this.grow();
    this.slots[this.tail++ & (this.slots.length - 1)] = x;
  }

  /**
   * Pushes `x` into a queue of at most `capacity`: the oldest goes first when it is full (with no room at all,
   * `x` itself). True when something was dropped.
   */
  pushDropOldest(x: T, capacity: number): boolean {
    if (capacity <= 0) return true;
    const full = this.length >= capacity;
    if (full) this.shift();
    this.push(x);
    return full;
  }

  /** The oldest item, taken out; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const i = this.head++ & (this.slots.length - 1);
    const x = this.slots[i];
    this.slots[i] = undefined;
    if (this.head === this.tail) {
      // Empty: indices from 0 again (they stay small), and a ring a burst grew is let go.
      this.head = this.tail = 0;
      if (this.slots.length > SHRINK_ABOVE) this.slots = new Array(MIN);
    }
    return x;
  }

  clear(): void {
    this.slots = new Array(MIN);
    this.head = this.tail = 0;
  }

  /** Twice the room, the items in order from index 0. */
  private grow(): void {
    const old = this.slots;
    const n = this.tail - this.head;
    const slots: (T | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < n; i++) slots[i] = old[(this.head + i) & (old.length - 1)];
    this.slots = slots;
    this.head = 0;
    this.tail = n;
  }
}
