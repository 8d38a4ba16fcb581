// The devices panel: every device with its peers (from `list_device_flows`,
// one row per peer with the services, packets and bytes of its flows) and a
// button per peer that blocks or unblocks that device's flow to it
// (`set_device_flow_block`).
import { el, flowService, formatBytes, formatTime, nodeLabel, peerLabel } from './labels.js';
import { rpc } from './rpc.js';

const REFRESH_MS = 3000;

export class DevicesPanel {
  #list;
  #model;
  #notify;
  #flows = new Map(); // mac → rows of list_device_flows
  #busy = false;
  #scheduled = false;
  #drawn = '';

  /** Called with each device and its flows after every refresh (the graph draws them). */
  onFlows = () => {};

  constructor(list, model, notify) {
    this.#list = list;
    this.#model = model;
    this.#notify = notify;
    for (const type of ['node', 'remove', 'list']) model.on(type, () => this.schedule());
    setInterval(() => this.refresh(), REFRESH_MS);
  }

  /** Asks for every device's flows again and redraws. */
  async refresh() {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const devices = this.#model.devices();
      await Promise.all(
        devices.map(async (device) => {
          try {
            this.#flows.set(device.mac, await rpc('list_device_flows', { device: device.mac }));
          } catch {
            this.#flows.delete(device.mac);
          }
        }),
      );
      await Promise.all(this.#peerIds().map((id) => this.#model.ensureNode(id)));
      for (const device of devices) this.onFlows(device, this.#flows.get(device.mac) ?? []);
    } finally {
      this.#busy = false;
    }
    this.render();
  }

  /** Renders once after a burst of changes (startup brings one nodeInfo per node). */
  schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      this.render();
    }, 50);
  }

  render() {
    // Redraw only on change, so a button does not move under the pointer.
    const state = JSON.stringify([
      this.#model.devices(),
      [...this.#flows],
      this.#model.lists,
      this.#peerIds().map((id) => this.#model.nodes.get(id)),
    ]);
    if (state === this.#drawn) return;
    this.#drawn = state;
    const cards = this.#model.devices().map((device) => this.#card(device));
    this.#list.replaceChildren(...(cards.length ? cards : [el('li', { className: 'meta' }, 'no devices seen yet')]));
  }

  #peerIds() {
    return [...new Set([...this.#flows.values()].flat().map((f) => f.to))];
  }

  #card(device) {
    const peers = groupByPeer(this.#flows.get(device.mac) ?? []);
    return el(
      'li',
      { className: 'device', 'data-mac': device.mac, 'data-node': device.id },
      el('div', { className: 'name' }, nodeLabel(device), this.#model.isBlocked(device) ? ' (blocked)' : ''),
      el('div', { className: 'meta' }, [device.mac, ...(device.ips ?? [])].join(' · ')),
      device.domains?.length ? el('div', { className: 'meta' }, `names: ${device.domains.join(' ')}`) : null,
      peers.length
        ? el(
            'table',
            { className: 'flows' },
            el(
              'tr',
              {},
              el('th', {}, 'peer'),
              el('th', {}, 'service'),
              el('th', {}, 'packets'),
              el('th', {}, 'bytes'),
              el('th', {}),
            ),
            peers.map((peer) => this.#row(device, peer)),
          )
        : el('div', { className: 'meta' }, 'no flows'),
    );
  }

  #row(device, peer) {
    const node = this.#model.nodes.get(peer.to);
    const label = node ? peerLabel(node) : `node ${peer.to}`;
    const title = node ? [...(node.ips ?? []), ...(node.domains ?? [])].join(' ') : '';
    const action = peer.blocked ? 'unblock-flow' : 'block-flow';
    return el(
      'tr',
      {
        className: peer.blocked ? 'flow blocked' : 'flow',
        'data-peer': peer.to,
        'data-peer-ips': node?.ips?.join(' '),
      },
      el('td', { title }, label),
      el('td', {}, peer.services.join(', ')),
      el('td', { className: 'num' }, peer.blocked ? 'blocked' : peer.packets),
      el(
        'td',
        { className: 'num', title: `last seen ${formatTime(peer.lastseen)}` },
        peer.blocked ? '' : formatBytes(peer.bytes),
      ),
      el(
        'td',
        {},
        el(
          'button',
          {
            type: 'button',
            className: peer.blocked ? '' : 'danger',
            'data-action': action,
            onclick: (event) => this.#setBlock(event.currentTarget, device, peer.to, label, !peer.blocked),
          },
          peer.blocked ? 'Unblock' : 'Block',
        ),
      ),
    );
  }

  async #setBlock(button, device, peer, label, block) {
    button.disabled = true;
    try {
      await rpc('set_device_flow_block', { device: device.mac, node: peer, block: block ? 1 : 0 });
      this.#notify(`${block ? 'Blocked' : 'Unblocked'} ${nodeLabel(device)} ↔ ${label}`);
    } catch (error) {
      this.#notify(error.message, 'error');
    }
    await this.refresh();
  }
}

/** One entry per peer: services, summed counters, blocked when any of its flows is. */
export function groupByPeer(flows) {
  const peers = new Map();
  for (const flow of flows) {
    const peer = peers.get(flow.to) ?? { to: flow.to, services: [], packets: 0, bytes: 0, lastseen: 0, blocked: false };
    const service = flowService(flow);
    if (!peer.services.includes(service)) peer.services.push(service);
    peer.packets += flow.packets ?? 0;
    peer.bytes += flow.bytes ?? 0;
    peer.lastseen = Math.max(peer.lastseen, flow.lastseen ?? 0);
    peer.blocked ||= Boolean(flow.blocked);
    peers.set(flow.to, peer);
  }
  return [...peers.values()].sort((a, b) => b.bytes - a.bytes);
}
