/**
 * The core's outgoing messages, and nodeInfo before anything that refers to
 * the node. SPIN's page takes a device's MAC from its *first* nodeInfo only,
 * so a node that appears without a MAC (from a DNS query or a conntrack
 * entry, before the neighbour event) is not announced at once: the kernel's
 * neighbour table is asked first (as spind asks `ip neigh` when it creates a
 * node), and every message waits meanwhile, in order. The wait is bounded by
 * the lookup's own time limit and the queue by MAX_HELD messages.
 */
import { Subject } from 'rxjs';
import { nodeInfoMessage, type SpinMessage } from './messages.js';
import type { SpinNode } from './model.js';

/** The kernel's answer for an address: its MAC, or undefined (not a neighbour, or no answer in time). */
export type MacLookup = (ip: string) => Promise<string | undefined>;

/**
 * Builds a message when it goes out. `id` gives a named node's id as it is
 * then (a merged node's survivor, its nodeInfo published first), or
 * undefined when that node is gone or ignored (leave it out); undefined: no message.
 */
export type Compose = (id: (n: SpinNode) => number | undefined) => SpinMessage | undefined;

export interface AnnouncerDeps {
  live(n: SpinNode): boolean;
  /** The live node a node is now: itself, the survivor it merged into, or undefined when gone. */
  current(n: SpinNode): SpinNode | undefined;
  isIgnored(n: SpinNode): boolean;
  json(n: SpinNode): { id: number } & Record<string, unknown>;
  /** Records what the kernel said (the node gets its MAC, the neighbour table its entry). */
  learnMac(mac: string, ip: string): void;
  lookupMac?: MacLookup;
}

/** Messages held while lookups run; beyond this they go out at once, in order. */
const MAX_HELD = 10_000;

export class Announcer {
  private readonly out = new Subject<SpinMessage>();
  readonly messages$ = this.out.asObservable();
  /** Nodes whose nodeInfo is due. */
  readonly pending = new Set<SpinNode>();
  private readonly announced = new WeakSet<SpinNode>();
  private readonly asked = new WeakSet<SpinNode>();
  private readonly lookups = new Set<Promise<void>>();
  private readonly held: (SpinMessage | Compose)[] = [];
  private readonly answered = new WeakSet<SpinNode>();
  /** Nodes left out of a message because they were gone or ignored when it went out. */
  leftOut = 0;

  constructor(private readonly deps: AnnouncerDeps) {}

  /** Publishes a message, or holds it (in order) while lookups run; a Compose is built when it goes out. */
  emit(m: SpinMessage | Compose): void {
    if (this.lookups.size === 0) this.send(m);
    else if (this.held.length < MAX_HELD) this.held.push(m);
    else {
      // Full: what waited goes out now, in order, then this one.
      for (const h of this.held.splice(0)) this.send(h);
      this.send(m);
    }
  }

  /** Publishes nodeInfo of every node changed since the last call (a MAC-less new node after its lookup). */
  flush(): void {
    if (this.pending.size === 0) return;
    const nodes = [...this.pending];
    this.pending.clear();
    for (const n of nodes) {
      if (!this.deps.live(n) || this.deps.isIgnored(n)) continue;
      if (this.startLookup(n)) {
        this.pending.add(n);
        continue;
      }
      // Built now (a node merged away later must not come back), counted as published when it goes out.
      const m = nodeInfoMessage(this.deps.json(n));
      this.emit(() => {
        this.announced.add(n);
        return m;
      });
    }
  }

  /** Resolves when the lookups running now are done. */
  async settled(): Promise<void> {
    while (this.lookups.size > 0) await Promise.all([...this.lookups]);
  }

  complete(): void {
    for (const m of this.held.splice(0)) this.send(m);
    this.out.complete();
  }

  private send(m: SpinMessage | Compose): void {
    const msg = typeof m === 'function' ? m(this.idOf) : m;
    if (msg) this.out.next(msg);
  }

  /** A named node's id as it is now; its nodeInfo goes out first if it has not yet (its own may still be held). */
  private readonly idOf = (n: SpinNode): number | undefined => {
    const c = this.deps.current(n);
    if (!c || this.deps.isIgnored(c)) {
      this.leftOut++;
      return undefined;
    }
    if (!this.announced.has(c)) {
      this.announced.add(c);
      this.out.next(nodeInfoMessage(this.deps.json(c)));
    }
    return c.id;
  };

  /** Starts asking the kernel about a new MAC-less node; true while its answer is awaited. */
  private startLookup(n: SpinNode): boolean {
    const lookup = this.deps.lookupMac;
    if (!lookup || n.mac || this.announced.has(n)) return false;
    if (this.asked.has(n)) return !this.answered.has(n);
    this.asked.add(n);
    const ips = [...n.ips];
    if (ips.length === 0) return false;
    const run = Promise.all(
      ips.map((ip) =>
        lookup(ip).then(
          (mac) => {
            if (mac) this.deps.learnMac(mac, ip);
          },
          () => {},
        ),
      ),
    ).then(() => {
      this.answered.add(n);
      this.lookups.delete(run);
      if (this.lookups.size > 0) return;
      // Everything asked is answered: nodeInfo first, then what waited, in order (unless the flush asks again).
      this.flush();
      if (this.lookups.size === 0) for (const m of this.held.splice(0)) this.send(m);
    });
    this.lookups.add(run);
    return true;
  }
}
