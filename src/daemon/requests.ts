/**
 * What each request does for a client. Handles (`create`, `populate`) are
 * for users the policy names (and root): anyone else may say hello and ask
 * for status, nothing more. Flows per uid and populate text per flow are
 * capped before anything is kept.
 */
import { FlowgrabError } from '../errors.js';
import { GraphError } from '../filters/errors.js';
import { measureSpec } from '../filters/limits.js';
import { parseGraph } from '../filters/parser.js';
import { lookupNode } from '../filters/registry.js';
import type { ClientView as Client } from './host.js';
import { FLOWS_PER_UID, POPULATE_TEXT_PER_FLOW, REGISTRATIONS_PER_UID, SOURCES_PER_UID } from './limits.js';
import { PROTOCOL_VERSION, type Request } from './protocol.js';
import { pipeRecords, principalOf, type RemoteFlow } from './remote-flow.js';

const who = (c: Client) => `uid ${c.peer.uid}${c.peer.user ? ` (${c.peer.user})` : ''}`;

/** Handles are for users the policy names: the same denial instantiate would give, before anything is kept. */
function mustBeInPolicy(c: Client, op: string) {
  const principal = principalOf(c.d.policy(), c.peer);
  if (principal) return principal;
  const message = `${who(c)} is not in the policy: denied`;
  // Once per connection: a client repeating the request must not flood the log either.
  if (!c.deniedLogged) {
    c.deniedLogged = true;
    c.d.log('warn', 'graph denied', { client: c.cid, uid: c.peer.uid, user: c.peer.user, op, issues: message });
  }
  if (op === 'queue') throw new FlowgrabError('FG_ERR_DENIED', message, { op });
  throw new GraphError([{ code: 'no_principal', path: [], message }], 'not authorized');
}

/** A flow's stats as a reply carries them: the graph's, and what the daemon sent or dropped for the client. */
const statsOf = (f: RemoteFlow) => ({ ...f.handle.stats(), sent: f.sent, droppedToClient: f.dropped });

/**
 * Sources the flow's populated graph names (0 when it does not parse: instantiate says why). A spec is measured
 * as it was given: printed as text and parsed again, some valid specs do not parse and would count none.
 */
function sourcesIn(f: RemoteFlow): number {
  let spec: unknown = f.populatedSpec;
  if (spec === undefined)
    try {
      spec = parseGraph(f.handle.graph);
    } catch {
      return 0;
    }
  const root = (spec as { root?: unknown } | undefined)?.root;
  return measureSpec(root, (name) => lookupNode(name)?.kind === 'source').size.sources;
}

function flowOf(c: Client, id: number): RemoteFlow {
  const f = c.flows.get(id);
  if (!f) throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `no flow ${id} on this connection`, { op: 'flow' });
  return f;
}

export async function handleRequest(c: Client, req: Request): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'hello':
      // The form of record frames is the client's choice, JSON unless it asks for compact ones (compact.ts).
      if (req.records) c.compact = req.records === 'compact';
      return {
        server: { protocol: PROTOCOL_VERSION },
        records: c.compact ? 'compact' : 'json',
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
      if (typeof req.graph !== 'string') f.populatedSpec = req.graph;
      f.populated += size;
      return { state: f.handle.state };
    }
    case 'instantiate': {
      const f = flowOf(c, req.flow);
      // Counted before anything is built: sources are what holds kernel sockets and threads.
      const sources = sourcesIn(f);
      const held = c.d.sourcesOf(c.peer.uid);
      if (held + sources > SOURCES_PER_UID)
        throw new FlowgrabError(
          'FG_ERR_DENIED',
          `${who(c)} has ${held} sources in its flows and this graph has ${sources}: over the ${SOURCES_PER_UID} one user may hold; close some flows first`,
          { op: 'instantiate' },
        );
      f.sources = sources;
      try {
        await f.handle.instantiate();
      } catch (err) {
        f.sources = undefined;
        throw err;
      }
      c.d.noteNetns(f.handle.requested);
      pipeRecords(c, f);
      return { state: f.handle.state, graph: f.handle.graph, stats: statsOf(f) };
    }
    case 'activate':
    case 'pause': {
      const f = flowOf(c, req.flow);
      await f.handle[req.op]();
      return { state: f.handle.state, stats: statsOf(f) };
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
      return { stats: statsOf(f) };
    }
    case 'queue': {
      const principal = mustBeInPolicy(c, 'queue');
      if (c.d.mux && c.d.mux.registrationsOf(c.peer.uid) >= REGISTRATIONS_PER_UID)
        throw new FlowgrabError(
          'FG_ERR_DENIED',
          `${who(c)} already holds ${REGISTRATIONS_PER_UID} queue registrations, the most one user may hold`,
          { op: 'queue' },
        );
      return c.d.queueMux().register(c, principal, req);
    }
    case 'verdict':
      return c.d.queueMux().verdict(c, req.queue, req.verdicts);
    case 'unqueue':
      return { released: c.d.queueMux().unregister(c, req.queue, 'client asked') };
  }
}
