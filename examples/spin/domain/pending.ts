/**
 * Conntrack deltas whose ends were not devices yet when they arrived. The
 * sources deliver in no particular order between them: a poll's delta can
 * be handled before the neighbour event that makes its end a device. Such a
 * delta is kept here (per conntrack tuple, amounts added up) and applied when
 * a MAC is learned for an end within `maxAgeMs`: counted on the new device,
 * and published as traffic if it was not already. Bounded: at most
 * `maxEntries` tuples (the oldest go first, counted), each kept `maxAgeMs`.
 */
import { AgedMap } from 'flowgrab';

/** Packets and bytes not yet applied. */
interface Amount {
  packets: number;
  bytes: number;
}

/** One conntrack tuple's amounts waiting for a MAC at either end. */
export interface HeldDelta {
  /** Its key in the table (kept: made again, the text would be hashed again). */
  readonly key: string;
  readonly src: string;
  readonly dst: string;
  readonly proto: number;
  readonly sport: number;
  readonly dport: number;
  readonly icmp: number;
  /** ms when first held (ages from here). */
  readonly at: number;
  /** Not yet in any `traffic` message (neither end was a device). */
  readonly unpublished: Amount;
  /** Not yet counted on the source's / destination's device flows (that end had no MAC). */
  readonly srcUncounted: Amount;
  readonly dstUncounted: Amount;
}

/** What to hold of one delta: which ends had no MAC, and whether it was published. */
export interface HoldRequest {
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  icmp: number;
  packets: number;
  bytes: number;
  srcIsDevice: boolean;
  dstIsDevice: boolean;
  published: boolean;
}

export interface PendingCounters {
  /** Deltas held (or added to a held tuple). */
  held: number;
  /** Held tuples applied once a MAC arrived. */
  applied: number;
  /** Tuples that aged out without an end becoming a device (traffic between non-devices, not published). */
  expired: number;
  /** Tuples dropped because `maxEntries` were held (their amounts lost for the devices they might have become). */
  dropped: number;
}

export const PENDING_LIMITS = { maxEntries: 10_000, maxAgeMs: 10_000 };

export class PendingDeltas {
  /**
   * Insertion order = age order. AgedMap, not Map: every delta between a device and a peer that is not one is held,
   * so the oldest go at the rate records come, and a Map walked its deleted slots each time (9 µs a record).
   */
  private readonly byKey = new AgedMap<string, HeldDelta>();
  private readonly byIp = new Map<string, Set<HeldDelta>>();
  readonly counters: PendingCounters = { held: 0, applied: 0, expired: 0, dropped: 0 };

  constructor(
    private readonly now: () => number,
    private readonly limits = PENDING_LIMITS,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Keeps the part of a delta that could not be applied: per MAC-less end, and unpublished traffic. */
  hold(r: HoldRequest): void {
    if (r.srcIsDevice && r.dstIsDevice) return;
    this.expire();
    const key = keyOf(r);
    let h = this.byKey.get(key);
    if (!h) {
      if (this.byKey.size >= this.limits.maxEntries) this.dropOldest();
      h = {
        key,
        src: r.src,
        dst: r.dst,
        proto: r.proto,
        sport: r.sport,
        dport: r.dport,
        icmp: r.icmp,
        at: this.now(),
        unpublished: { packets: 0, bytes: 0 },
        srcUncounted: { packets: 0, bytes: 0 },
        dstUncounted: { packets: 0, bytes: 0 },
      };
      this.byKey.set(key, h);
    }
    if (!r.srcIsDevice) this.index(r.src, h);
    if (!r.dstIsDevice) this.index(r.dst, h);
    this.counters.held++;
    if (!r.published) add(h.unpublished, r);
    if (!r.srcIsDevice) add(h.srcUncounted, r);
    if (!r.dstIsDevice) add(h.dstUncounted, r);
  }

  /**
   * Takes every tuple waiting on this address (a MAC was learned for it). The
   * caller applies them and zeroes what it applied; a tuple still waiting on
   * its other end stays held for it.
   */
  take(ip: string): HeldDelta[] {
    this.expire();
    const set = this.byIp.get(ip);
    if (!set) return [];
    this.byIp.delete(ip);
    for (const h of set) {
      const other = h.src === ip ? h.dst : h.src;
      if (!this.byIp.get(other)?.has(h)) this.byKey.delete(h.key);
    }
    this.counters.applied += set.size;
    return [...set];
  }

  /** Drops tuples held longer than `maxAgeMs`. */
  expire(): void {
    const limit = this.now() - this.limits.maxAgeMs;
    for (let h = this.byKey.oldest(); h !== undefined && h.at <= limit; h = this.byKey.oldest()) {
      this.forget(h);
      this.counters.expired++;
    }
  }

  private dropOldest(): void {
    const first = this.byKey.oldest();
    if (first === undefined) return;
    this.forget(first);
    this.counters.dropped++;
  }

  private index(ip: string, h: HeldDelta): void {
    let set = this.byIp.get(ip);
    if (!set) this.byIp.set(ip, (set = new Set()));
    set.add(h);
  }

  private unindex(ip: string, h: HeldDelta): void {
    const set = this.byIp.get(ip);
    if (set?.delete(h) && set.size === 0) this.byIp.delete(ip);
  }

  private forget(h: HeldDelta): void {
    this.byKey.delete(h.key);
    this.unindex(h.src, h);
    this.unindex(h.dst, h);
  }
}

function keyOf(h: Omit<HoldRequest, 'packets' | 'bytes' | 'srcIsDevice' | 'dstIsDevice' | 'published'>): string {
  return `${h.src}|${h.dst}|${h.proto}|${h.sport}|${h.dport}|${h.icmp}`;
}

function add(a: Amount, r: { packets: number; bytes: number }): void {
  a.packets += r.packets;
  a.bytes += r.bytes;
}

/** Takes what is left of an amount (zeroing it): undefined when nothing is. */
export function takeAmount(a: Amount): Amount | undefined {
  if (a.packets === 0 && a.bytes === 0) return undefined;
  const out = { packets: a.packets, bytes: a.bytes };
  a.packets = 0;
  a.bytes = 0;
  return out;
}
