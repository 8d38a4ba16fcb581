/**
 * What each request does for a client. Handles (`create`, `populate`) are
 * for users the policy names (and root): anyone else may say hello and ask
 * for status, nothing more. Flows per uid and populate text per flow are
 * capped before anything is kept.
 */
import { FlowgrabError } from '../errors.js';
import type { Client } from './connection.js';
import { FLOWS_PER_UID, POPULATE_TEXT_PER_FLOW } from './limits.js';
import { PROTOCOL_VERSION, type Request } from './protocol.js';
import { pipeRecords, principalOf, type RemoteFlow } from './remote-flow.js';

const who = (c: Client) => `uid ${c.peer.uid}${c.peer.user ? ` (${c.peer.user})` : ''}`;

function mustBeInPolicy(c: Client, op: string) {
  const principal = principalOf(c.d.policy(), c.peer);
  if (!principal) throw new FlowgrabError('FG_ERR_DENIED', `${who(c)} is not in the policy: denied`, { op });
  return principal;
}

function flowOf(c: Client, id: number): RemoteFlow {
  const f = c.flows.get(id);
  if (!f) throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `no flow ${id} on this connection`, { op: 'flow' });
  return f;
}

export async function handleRequest(c: Client, req: Request): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'hello':
      return {
        server: { protocol: PROTOCOL_VERSION },
        identity: { uid: c.peer.uid, gid: c.peer.gid, user: c.peer.user },
      };
    case 'status':
      return { status: c.d.status(c.peer) };
    case 'create': {
      mustBeInPolicy(c, 'create');
      const held = c.d.allFlowsOf(c.peer.uid);
      if (held >= FLOWS_PER_UID)
        throw new FlowgrabError(
          'FG_ERR_DENIED',
          `${who(c)} already holds ${held} flows, the most one user may hold (${FLOWS_PER_UID}): close some first`,
          { op: 'create' },
        );
      const id = c.nextFlow++;
      const handle = c.fg.create({
        name: req.name ?? `${c.peer.user ?? c.peer.uid}/${id}`,
        bufferRecords: req.bufferRecords,
        overflow: req.overflow,
      });
      c.flows.set(id, { id, handle, sent: 0, dropped: 0, unreported: 0, populated: 0 });
      return { flow: id, state: handle.state };
    }
    case 'populate': {
      mustBeInPolicy(c, 'populate');
      const f = flowOf(c, req.flow);
      const size = typeof req.graph === 'string' ? Buffer.byteLength(req.graph) : JSON.stringify(req.graph).length;
      if (f.populated + size > POPULATE_TEXT_PER_FLOW)
        throw new FlowgrabError(
          'FG_ERR_DENIED',
          `flow ${f.id}: graph text over ${POPULATE_TEXT_PER_FLOW} bytes (${f.populated} held, ${size} more asked)`,
          { op: 'populate' },
        );
      f.handle.populate(req.graph);
      f.populated += size;
      return { state: f.handle.state };
    }
    case 'instantiate': {
      const f = flowOf(c, req.flow);
      await f.handle.instantiate();
      pipeRecords(c, f);
      return { state: f.handle.state, graph: f.handle.graph };
    }
    case 'activate':
    case 'pause': {
      const f = flowOf(c, req.flow);
      await f.handle[req.op]();
      return { state: f.handle.state };
    }
    case 'close': {
      const f = c.flows.get(req.flow);
      if (f) {
        await f.handle.close();
        c.flows.delete(req.flow);
      }
      return { state: 'closed' };
    }
    case 'stats': {
      const f = flowOf(c, req.flow);
      return { stats: { ...f.handle.stats(), sent: f.sent, droppedToClient: f.dropped } };
    }
    case 'queue': {
      const principal = mustBeInPolicy(c, 'queue');
      return c.d.queueMux().register(c, principal, req);
    }
    case 'verdict':
      return c.d.queueMux().verdict(c, req.queue, req.verdicts);
    case 'unqueue':
      return { released: c.d.queueMux().unregister(c, req.queue, 'client asked') };
  }
}
