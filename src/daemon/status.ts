/**
 * What `status` shows (bounded: a user with many flows or long graphs must
 * not make each reply megabytes), and the flow limits a reloaded policy
 * imposes on flows already running.
 */
import type { Policy } from '../auth/policy.js';
import type { ClientView as Client, DaemonHost as Daemon, DaemonStatus } from './host.js';
import { STATUS_CLIENTS, STATUS_FLOWS, STATUS_GRAPH_CHARS } from './limits.js';
import type { Peer } from './peer.js';
import { principalOf } from './remote-flow.js';

const clip = (s: string | undefined) =>
  s === undefined || s.length <= STATUS_GRAPH_CHARS ? s : `${s.slice(0, STATUS_GRAPH_CHARS)}…`;

/** Root sees every client; others only their own. At most STATUS_CLIENTS clients of STATUS_FLOWS flows each. */
export function boundedStatus(d: Daemon, asker: Peer): DaemonStatus {
  const visible = d.clientList.filter((c) => asker.uid === 0 || c.peer.uid === asker.uid);
  const clients = visible.slice(0, STATUS_CLIENTS).map((c) => {
    const flows = [...c.flows.values()];
    return {
      client: c.cid,
      pid: c.peer.pid,
      uid: c.peer.uid,
      user: c.peer.user,
      unread: c.unread,
      flows: flows.slice(0, STATUS_FLOWS).map((f) => ({
        flow: f.id,
        name: f.handle.name,
        graph: clip(f.handle.graph),
        sent: f.sent,
        droppedToClient: f.dropped,
        ...f.handle.stats(),
      })),
      ...(flows.length > STATUS_FLOWS ? { flowsNotShown: flows.length - STATUS_FLOWS } : {}),
    };
  });
  return {
    ...d.stats,
    clientCount: d.stats.clients,
    clients,
    ...(visible.length > STATUS_CLIENTS ? { clientsNotShown: visible.length - STATUS_CLIENTS } : {}),
    ...(d.mux ? { nfqueue: d.mux.status(asker.uid) } : {}),
  };
}

/**
 * After a reload: each uid keeps at most its new `limits.flows` running
 * flows (its oldest); the newer ones are closed and their clients told why.
 */
export async function enforceFlowLimits(clients: Client[], policy: Policy): Promise<void> {
  const byUid = new Map<number, { c: Client; id: number }[]>();
  for (const c of clients)
    for (const f of c.flows.values()) {
      if (f.handle.state === 'created' || f.handle.state === 'populated' || f.handle.state === 'closed') continue;
      const list = byUid.get(c.peer.uid) ?? [];
      list.push({ c, id: f.id });
      byUid.set(c.peer.uid, list);
    }
  for (const list of byUid.values()) {
    const { c: first } = list[0];
    const max = principalOf(policy, first.peer)?.limits.flows;
    if (max === undefined || list.length <= max) continue;
    // Oldest first: connection order, then flow order within a connection.
    list.sort((a, b) => a.c.cid - b.c.cid || a.id - b.id);
    for (const { c, id } of list.slice(max)) {
      const f = c.flows.get(id);
      if (f) await c.closeFlow(f, `the new policy allows ${max} flows for you; this one was over the limit`);
    }
  }
}
