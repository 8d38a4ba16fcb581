import { AgedMap } from './aged-map.js';

/** A map of at most `max` entries that forgets the one used least recently. */
export class Lru<K, V> {
  private readonly map = new AgedMap<K, V>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(k: K): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) this.map.renew(k, v); // most recent last
    return v;
  }

  set(k: K, v: V): void {
    this.map.renew(k, v);
    if (this.map.size > this.max) this.map.shift();
  }
}
