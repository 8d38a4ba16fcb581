/**
 * flowgrabd's clients by uid, and what each user holds over all their
 * connections: connections, flows, sources, unread output. The per-user
 * caps (limits.ts) and the user's output bound (maxUserBacklog) are counted
 * over a user's own connections only, not by walking every client.
 */
import type { ClientView } from './host.js';

export class ClientsByUser<C extends ClientView> {
  private readonly byUid = new Map<number, Set<C>>();

  add(c: C): void {
    const mine = this.byUid.get(c.peer.uid) ?? new Set();
    this.byUid.set(c.peer.uid, mine.add(c));
  }

  delete(c: C): void {
    const mine = this.byUid.get(c.peer.uid);
    mine?.delete(c);
    if (mine?.size === 0) this.byUid.delete(c.peer.uid);
  }

  connections(uid: number): number {
    return this.byUid.get(uid)?.size ?? 0;
  }

  /** Flows past instantiate (the one being authorized is still populated). */
  flows(uid: number): number {
    let n = 0;
    for (const c of this.of(uid))
      for (const f of c.flows.values()) if (f.handle.state !== 'created' && f.handle.state !== 'populated') n++;
    return n;
  }

  /** Flows in any state, authorized or not. */
  allFlows(uid: number): number {
    let n = 0;
    for (const c of this.of(uid)) n += c.flows.size;
    return n;
  }

  sources(uid: number): number {
    let n = 0;
    for (const c of this.of(uid)) for (const f of c.flows.values()) n += f.sources ?? 0;
    return n;
  }

  unread(uid: number): number {
    let n = 0;
    for (const c of this.of(uid)) n += c.unread;
    return n;
  }

  private of(uid: number): Iterable<C> {
    return this.byUid.get(uid) ?? [];
  }
}
