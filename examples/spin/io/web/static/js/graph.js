// The vis-network view: devices and the nodes they talk to, an edge per
// direction labelled with the services seen, coloured as SPIN's bubble app
// colours them. Nodes idle for 10 minutes leave the view.
import { nodeLabel, serviceName } from './labels.js';

const COLORS = {
  device: '#dddddd',
  recent: '#bbffbb',
  remote: '#bbddff',
  dns: '#ffab44',
  blockedPeer: '#ff9a9a',
};
const EDGE_COLORS = { traffic: '#8a99a6', dns: '#ffab44', blocked: '#e53935' };
const RECENT_MS = 30_000;
const IDLE_MS = 600_000;
const EXPIRE_EVERY_MS = 5000;

export class GraphView {
  #model;
  #nodes = new vis.DataSet();
  #edges = new vis.DataSet();
  #seen = new Map(); // node id → { at: ms, kind }
  #services = new Map(); // edge id → Set of service names
  #gone = new Set(); // merged away or deleted: ids are never reused within a server run
  network;

  constructor(container, model) {
    this.#model = model;
    this.network = new vis.Network(
      container,
      { nodes: this.#nodes, edges: this.#edges },
      {
        nodes: { shape: 'box', margin: 8, font: { size: 14 }, borderWidth: 1 },
        edges: { arrows: 'to', length: 180, smooth: { type: 'continuous' }, font: { size: 11, align: 'top' } },
        physics: { solver: 'forceAtlas2Based', stabilization: { iterations: 80 } },
        interaction: { hover: true },
      },
    );
    model.on('node', (node) => this.#nodes.get(node.id) && this.#draw(node.id));
    model.on('remove', ({ id }) => {
      this.#gone.add(id);
      this.remove(id);
    });
    model.on('list', () => {
      for (const id of this.#nodes.getIds()) this.#draw(id);
    });
    setInterval(() => this.#age(), EXPIRE_EVERY_MS);
  }

  /** Shows a node (devices stay until removed). */
  show(id, kind = 'remote') {
    // A late answer (an RPC that started before the merge) must not bring the node back.
    if (this.#gone.has(id)) return;
    const previous = this.#seen.get(id);
    // A node keeps the strongest colour it earned (a device stays a device).
    const keep = previous && (previous.kind === 'device' || (previous.kind === 'blockedPeer' && kind !== 'device'));
    this.#seen.set(id, { at: Date.now(), kind: keep ? previous.kind : kind });
    this.#draw(id);
  }

  flow(from, to, { port, kind = 'traffic' } = {}) {
    const node = (id) => this.#model.nodes.get(id);
    if (this.#gone.has(from) || this.#gone.has(to)) return;
    if (this.#model.isIgnored(node(from)) || this.#model.isIgnored(node(to))) return;
    this.show(from, node(from)?.mac ? 'device' : 'remote');
    const toKind = { dns: 'dns', blocked: 'blockedPeer' }[kind] ?? 'remote';
    this.show(to, node(to)?.mac ? 'device' : toKind);
    const id = `${kind}:${from}>${to}`;
    const services = this.#services.get(id) ?? new Set();
    if (port) services.add(serviceName(port));
    this.#services.set(id, services);
    this.#edges.update({
      id,
      from,
      to,
      label: [...services].slice(0, 4).join(', '),
      color: { color: EDGE_COLORS[kind], highlight: EDGE_COLORS[kind] },
      dashes: kind === 'dns',
      width: kind === 'blocked' ? 2 : 1,
    });
  }

  /** Drops the red edge of a flow that is no longer blocked. */
  clearBlocked(from, to) {
    this.#edges.remove(`blocked:${from}>${to}`);
    this.#services.delete(`blocked:${from}>${to}`);
  }

  remove(id) {
    this.#seen.delete(id);
    const gone = this.#edges.get({ filter: (e) => e.from === id || e.to === id });
    for (const edge of gone) this.#services.delete(edge.id);
    this.#edges.remove(gone.map((e) => e.id));
    this.#nodes.remove(id);
  }

  edge(id) {
    return this.#edges.get(id);
  }

  /** What is drawn, for a person in the developer tools (and for tests). */
  snapshot() {
    return {
      nodes: this.#nodes.get().map((n) => ({ id: n.id, label: n.label, kind: this.#seen.get(n.id)?.kind })),
      edges: this.#edges.get().map((e) => ({ id: e.id, from: e.from, to: e.to, label: e.label })),
    };
  }

  fit() {
    this.network.fit({ animation: false });
  }

  #draw(id) {
    const node = this.#model.nodes.get(id);
    const seen = this.#seen.get(id);
    if (!seen) return;
    let background = COLORS[seen.kind] ?? COLORS.remote;
    if (seen.kind === 'remote' && Date.now() - seen.at < RECENT_MS) background = COLORS.recent;
    let border = '#777777';
    if (this.#model.isBlocked(node)) border = '#c62828';
    else if (this.#model.isAllowed(node)) border = '#2e7d32';
    const lines = node ? [...(node.ips ?? []), ...(node.domains ?? [])] : [];
    this.#nodes.update({
      id,
      label: graphLabel(node ?? { id }),
      title: lines.join('\n') || `node ${id}`,
      color: { background, border, highlight: { background, border } },
      borderWidth: border === '#777777' ? 1 : 3,
    });
  }

  #age() {
    const now = Date.now();
    for (const [id, seen] of this.#seen) {
      if (seen.kind !== 'device' && now - seen.at > IDLE_MS) this.remove(id);
      else if (seen.kind === 'remote' && now - seen.at >= RECENT_MS && now - seen.at < RECENT_MS + EXPIRE_EVERY_MS)
        this.#draw(id);
    }
  }
}

/** SPIN's label; a device known only by its MAC also shows its first DNS name. */
function graphLabel(node) {
  const label = nodeLabel(node);
  if (node.name || !node.mac || !node.domains?.length) return label;
  return `${label}\n${node.domains[0].replace(/\.$/, '')}`;
}
