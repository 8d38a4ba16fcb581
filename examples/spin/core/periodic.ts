/**
 * The core's periodic work: the traffic second (traffic and blocked
 * messages), flow and node ageing, and the store sync.
 */

import { trafficMessage } from '../domain/messages.js';
import type { SpinNode } from '../domain/model.js';
import { blockedMessages, trafficFlows } from '../domain/traffic.js';
import { storedNode } from '../io/store.js';
import type { CoreParts } from './parts.js';

/** The second's traffic, built when it goes out: between the nodes as they are then, each announced before. */
export function publishTraffic(c: CoreParts): void {
  if (c.traffic.size === 0) return;
  const counted = c.traffic.take();
  c.flushNodeInfo();
  c.announcer.emit((id) => {
    const flows = trafficFlows(counted, id);
    if (flows.length === 0) return undefined;
    c.counters.trafficMessages++;
    c.peaks.add(flows);
    return trafficMessage(flows, Math.floor(c.model.now() / 1000));
  });
}

export async function publishBlocked(c: CoreParts): Promise<void> {
  const drops = await c.enforcer.drops();
  const msgs = blockedMessages(drops, c.lists.ignore, c.model);
  c.flushNodeInfo();
  c.counters.blocked += msgs.length;
  for (const m of msgs) c.announcer.emit(m);
}

export function ageFlows(c: CoreParts): number {
  const p = c.periods;
  const n = c.model.ageFlows(p.flowIdleMs, p.keepFlows, p.flowMaxIdleMs, c.blocks.held());
  c.blocks.expire(c.model.now());
  c.peaks.expire();
  return n;
}

export function expireNodes(c: CoreParts): SpinNode[] {
  const p = c.periods;
  return c.model.expire(p.nodeRetainMs, p.deviceRetainMs, (mac) => c.liveMac(mac));
}

/** Writes changed node identities (and the id counter) to the store. */
export function syncStore(c: CoreParts): void {
  if (c.dirty.size === 0 && c.deletedIds.size === 0) return;
  const put = [...c.dirty].filter((n) => c.model.get(n.id) === n).map(storedNode);
  c.store.syncNodes(put, [...c.deletedIds], c.model.lastId);
  c.dirty.clear();
  c.deletedIds.clear();
}
