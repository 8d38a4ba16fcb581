/**
 * authorize(graph, who, policy): checks a whole graph against the policy and
 * returns every issue at once, and the graph to run — with the principal's
 * scope and redaction inserted right after each source (enforced, not just
 * checked) and its rate limit at the end. Deny by default, except root.
 *
 * Cost is bounded before anything else: the graph's size is measured
 * against GRAPH_LIMITS without recursion, then every check is one pass
 * (ordering rules are a dataflow analysis, see order.ts), so any graph a
 * client can send costs time linear in the limits.
 */

import { pathIssues } from '../filters/amplification.js';
import type { GraphIssue } from '../filters/errors.js';
import { setAnonymizeSecret } from '../filters/lib/anonymize.js';
import { measureSpec } from '../filters/limits.js';
import { Duration } from '../filters/params.js';
import { CAPABILITIES, type Capability, lookupNode, nodeCapabilities } from '../filters/registry.js';
import type { ExprSpec, GraphSpec, NodeSpec } from '../filters/spec.js';
import { node } from '../filters/spec.js';
import { checkOrder } from './order.js';
import { checkParams, enrichNetnsIssues, nodeParams } from './params.js';
import { graphNodes } from './paths.js';
import { type Identity, type Policy, type Principal, principalFor, ROOT_PRINCIPAL } from './policy.js';

export interface AuthContext {
  /** Flows this identity already has open (for limits.flows). */
  openFlows?: number;
  /** The buffer the flow asks for (for limits.bufferRecords). */
  bufferRecords?: number;
  /** NFQUEUE queue numbers the daemon owns itself (its shared queue): the nfqueue() source may not read them. */
  reservedQueues?: number[];
  /**
   * The daemon's anonymization secret. Every anonymize() of an authorized graph
   * runs with it (registered under POLICY_SECRET, so it never shows in a graph).
   * Without it the process's random key is used. A user's own key= is refused
   * either way: a known key makes prefix-preserving anonymization reversible.
   */
  anonymizeKey?: string;
}

/** The name under which authorize() registers AuthContext.anonymizeKey for anonymize(secret=…). */
export const POLICY_SECRET = 'policy';

/** What authorize() decides: allowed or not, every issue at once, and the graph to run. */
export interface AuthResult {
  /** True when the principal may run the graph (then `issues` is empty). */
  allowed: boolean;
  /** Every reason the graph was refused, each with its path in the graph. */
  issues: GraphIssue[];
  /** The graph to run: scope, redaction and rate limit inserted. Equal to the input when denied. */
  graph: GraphSpec;
  /** The matching principal (absent when nobody matched). */
  principal?: Principal;
}

const who = (id: Identity) => `uid ${id.uid}${id.user ? ` (${id.user})` : ''}`;
const allowed = (list: string[], name: string) => list.includes('*') || list.includes(name);

/** Does the principal hold this capability? ('netns' is judged with the parameters, in checkParams.) */
function holds(p: Principal, cap: Capability): boolean {
  return p.capabilities.includes(cap) || (cap === 'verdicts' && p.verdicts);
}

const CAP_WHAT: Record<string, string> = {
  'read-files': 'reads files',
  verdicts: 'gives verdicts on queued packets',
  netns: 'enters another network namespace',
  firewall: 'installs firewall rules',
  'capture-dns': 'captures DNS traffic',
  nats: 'connects to a NATS server and consumes from its streams',
};

function checkNode(p: Principal, id: Identity, n: NodeSpec, path: GraphIssue['path'], ctx: AuthContext): GraphIssue[] {
  const issues: GraphIssue[] = [];
  const kind = lookupNode(n.name)?.kind;
  if (kind === 'source' && !allowed(p.sources, n.name))
    issues.push({ code: 'source_denied', path, message: `source \`${n.name}\` is not allowed for ${who(id)}` });
  if (kind === 'filter' && !allowed(p.filters, n.name))
    issues.push({ code: 'filter_denied', path, message: `filter \`${n.name}\` is not allowed for ${who(id)}` });
  // An unknown node: the graph check names it. A node denied by name: what it could do does not matter.
  if (!kind || issues.length) return issues;
  const params = nodeParams(n);
  for (const cap of nodeCapabilities(n.name, params)) {
    if (cap === 'netns') continue; // checkParams says which namespaces
    if (!holds(p, cap))
      issues.push({
        code: 'capability_denied',
        path,
        message: `${kind} \`${n.name}\` ${CAP_WHAT[cap]}: your policy does not grant the capability "${cap}"`,
      });
  }
  checkParams(p, n, path, issues);
  if (n.name === 'conntrack' && id.uid !== 0 && params.poll !== undefined) {
    const ms = Duration.safeParse(params.poll);
    if (!ms.success || ms.data < MIN_POLL_MS)
      issues.push({
        code: 'param_limit',
        path,
        message: `conntrack: poll=${JSON.stringify(params.poll)}: polls are at least ${MIN_POLL_MS / 1000}s apart under a policy (each one walks the whole table)`,
      });
  }
  if (n.name === 'nfqueue' && ctx.reservedQueues?.includes(Number(params.queue)))
    issues.push({
      code: 'queue_reserved',
      path,
      message: `nfqueue: queue ${params.queue} is the daemon's own shared queue; use a queue registration (mark/mask) instead`,
    });
  if (
    n.name === 'anonymize' &&
    id.uid !== 0 &&
    (params.key !== undefined || params.secret !== undefined || params.context !== undefined)
  )
    issues.push({
      code: 'param_denied',
      path,
      message: "anonymize: the key is the daemon's secret under a policy; leave out key=, secret= and context=",
    });
  return issues;
}

/**
 * The shortest conntrack poll a user may ask for under a policy: each poll dumps the whole table (the kernel walks
 * every entry of every namespace's hash table). 16 sources polling every millisecond took 2.9 s of system CPU in
 * 3 s of a shared daemon. (In its own process a program polls as often as it likes.)
 */
export const MIN_POLL_MS = 1000;

/** Sources whose records the kernel makes: a user cannot choose what is in them (beyond the traffic they make). */
const KERNEL_SOURCES = new Set(['conntrack', 'dns', 'arp', 'nfqueue']);
/** Sources of records other machines made (exported to NATS): neither the kernel's here nor the user's own. */
const EXPORTED_SOURCES = new Set(['nats']);

/** Where a source's records come from, as anonymization keys tell them apart. */
type Origin = 'kernel' | 'exported' | 'chosen';
const ORIGIN_WORDS: Record<Origin, string> = {
  kernel: "the kernel's",
  exported: 'records other machines exported',
  chosen: 'records you choose',
};

/**
 * Whose pseudonyms a graph's anonymize() makes under the daemon's secret: each user's own, and apart from them
 * those of records other machines exported (nats), and those of records the user chose (replay, any other
 * source). A user who could anonymize addresses of their choosing with the key of the kernel's records, or of
 * other routers' records, would have an oracle: prefix-preserving pseudonyms give an address away bit by bit to
 * 32 chosen probes.
 */
function anonymizeContext(id: Identity, sources: SourcesOf): string {
  return `uid ${id.uid}${sources.exported.length ? ' exported' : ''}${sources.chosen.length ? ' chosen' : ''}`;
}

/** A graph's source nodes by the origin of their records. */
type SourcesOf = Record<Origin, ReturnType<typeof graphNodes>>;
function sourcesOf(nodes: ReturnType<typeof graphNodes>): SourcesOf {
  const sources = nodes.filter(({ node: n }) => lookupNode(n.name)?.kind === 'source');
  const origin = (name: string): Origin =>
    KERNEL_SOURCES.has(name) ? 'kernel' : EXPORTED_SOURCES.has(name) ? 'exported' : 'chosen';
  return {
    kernel: sources.filter(({ node: n }) => origin(n.name) === 'kernel'),
    exported: sources.filter(({ node: n }) => origin(n.name) === 'exported'),
    chosen: sources.filter(({ node: n }) => origin(n.name) === 'chosen'),
  };
}

/** A graph that anonymizes under an ordering rule may not put records of two origins in one flow (one key for both). */
function mixedSourceIssues(p: Principal, sources: SourcesOf): GraphIssue[] {
  if (!p.order.some((r) => r.requires === 'anonymize')) return [];
  const present = (Object.keys(sources) as Origin[]).filter((o) => sources[o].length > 0);
  if (present.length < 2) return [];
  const [first, second] = present;
  const a = sources[first][0];
  const b = sources[second][0];
  return [
    {
      code: 'mixed_sources',
      path: b.path,
      message: `source \`${b.node.name}\` beside \`${a.node.name}\`: under your policy's anonymization, ${ORIGIN_WORDS[second]} may not share a flow with ${ORIGIN_WORDS[first]}; use separate flows`,
    },
  ];
}

/** Inserts scope and redaction after each source node, the daemon's key into anonymize, and the rate limit at the end. */
function enforce(p: Principal, root: ExprSpec, ctx: AuthContext, context: string): ExprSpec {
  const guards: NodeSpec[] = [];
  if (p.scope?.length) guards.push(node('scope', [], { cidrs: p.scope }));
  if (p.redact.length) guards.push(node('redact', [], { fields: p.redact }));
  const keyed = (n: NodeSpec): NodeSpec => {
    if (n.name === 'anonymize' && ctx.anonymizeKey !== undefined && n.params.key === undefined)
      return { ...n, params: { ...n.params, secret: POLICY_SECRET, context } };
    // A scoped user's verdicts decide only for packets inside the scope (the others are accepted unseen).
    if (n.name === 'nfqueue' && p.scope?.length) return { ...n, params: { ...n.params, scope: p.scope } };
    return n;
  };
  // Every source, wherever it stands (a source after `->` or deep in a fork ignores its input): the guards follow it.
  const wrap = (e: ExprSpec): ExprSpec => {
    if (e.type === 'pipe') return { type: 'pipe', steps: e.steps.map(wrap) };
    if (e.type === 'fork') return { type: 'fork', branches: e.branches.map(wrap) };
    const n = keyed(e);
    if (guards.length && lookupNode(n.name)?.kind === 'source') return { type: 'pipe', steps: [n, ...guards] };
    return n;
  };
  const guarded = wrap(root);
  const rate = p.limits.recordsPerSecond;
  return rate ? { type: 'pipe', steps: [guarded, node('ratelimit', [], { rate })] } : guarded;
}

/** Checks `graph` for `id` against `policy` (root without a principal gets ROOT_PRINCIPAL): sources, filters, capabilities, parameter bounds, order rules and limits; inserts scope, redaction and the rate limit. Never throws for a refused graph: see `issues`. */
export function authorize(graph: GraphSpec, id: Identity, policy: Policy, ctx: AuthContext = {}): AuthResult {
  const p = principalFor(policy, id) ?? (id.uid === 0 ? ROOT_PRINCIPAL : undefined);
  if (!p)
    return {
      allowed: false,
      graph,
      issues: [{ code: 'no_principal', path: [], message: `${who(id)} is not in the policy: denied` }],
    };
  // Root holds every capability whatever its principal says: it could do all of that without the daemon.
  // Its principal's names, parameter limits, scope and rules still apply.
  const eff = id.uid === 0 ? { ...p, capabilities: [...CAPABILITIES], verdicts: true } : p;
  // Size first, for everyone (root too): nothing below may see a graph over the limits.
  const size = measureSpec(graph.root, (name) => lookupNode(name)?.kind === 'source');
  if (!size.issues.length) size.issues.push(...pathIssues(graph.root));
  if (size.issues.length) return { allowed: false, issues: size.issues, graph, principal: p };
  const issues: GraphIssue[] = [];
  const nodes = graphNodes(graph.root);
  for (const { node: n, path } of nodes) issues.push(...checkNode(eff, id, n, path, ctx));
  issues.push(...enrichNetnsIssues(eff, nodes));
  issues.push(...checkOrder(p.order, graph.root).issues);
  const sources = sourcesOf(nodes);
  if (id.uid !== 0) issues.push(...mixedSourceIssues(p, sources));
  const lim = p.limits;
  if (lim.flows !== undefined && (ctx.openFlows ?? 0) >= lim.flows) {
    issues.push({
      code: 'flow_limit',
      path: [],
      message: `${who(id)} already has ${ctx.openFlows} flows open (limit ${lim.flows})`,
    });
  }
  if (lim.bufferRecords !== undefined && (ctx.bufferRecords ?? 0) > lim.bufferRecords) {
    issues.push({
      code: 'buffer_limit',
      path: [],
      message: `a buffer of ${ctx.bufferRecords} records is above your limit of ${lim.bufferRecords}`,
    });
  }
  if (issues.length) return { allowed: false, issues, graph, principal: p };
  if (ctx.anonymizeKey !== undefined) setAnonymizeSecret(POLICY_SECRET, ctx.anonymizeKey);
  return {
    allowed: true,
    issues: [],
    graph: { version: 1, root: enforce(p, graph.root, ctx, anonymizeContext(id, sources)) },
    principal: p,
  };
}

/** authorize() that never throws: an unexpected failure is an issue (and a denial). */
export function safeAuthorize(graph: GraphSpec, id: Identity, policy: Policy, ctx: AuthContext = {}): AuthResult {
  try {
    return authorize(graph, id, policy, ctx);
  } catch (err) {
    return {
      allowed: false,
      graph,
      issues: [{ code: 'internal', path: [], message: `authorization failed: ${(err as Error).message}` }],
    };
  }
}
