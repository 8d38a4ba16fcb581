// The details of the node or edge selected in the graph, with SPIN's
// buttons: block / allow / ignore a node (`add_iplist_node`,
// `remove_iplist_node`), rename it (`set_device_name`), block the flow an
// edge stands for (`set_flow_block`).
import { el, formatTime, nodeLabel } from './labels.js';
import { rpc } from './rpc.js';

export class SelectionPanel {
  #root;
  #model;
  #notify;
  #selected; // { node: id } | { edge: { from, to } }

  constructor(root, model, notify) {
    this.#root = root;
    this.#model = model;
    this.#notify = notify;
    model.on('node', (node) => this.#selected?.node === node.id && this.#render());
    model.on('list', () => this.#selected && this.#render());
    model.on('remove', ({ id }) => this.#selected?.node === id && this.clear());
    root.querySelector('#rename').addEventListener('submit', (event) => {
      event.preventDefault();
      this.#rename();
    });
  }

  async selectNode(id) {
    this.#selected = { node: id };
    this.#render();
    // As the bubble app does: fresh details for the selected node.
    try {
      this.#model.setNode(await rpc('get_device_data', { node: id }));
    } catch (error) {
      this.#notify(error.message, 'error');
    }
  }

  selectEdge(edge) {
    this.#selected = { edge };
    this.#render();
  }

  clear() {
    this.#selected = undefined;
    this.#root.hidden = true;
  }

  #render() {
    const title = this.#root.querySelector('#selection-title');
    const details = this.#root.querySelector('#selection-details');
    const buttons = this.#root.querySelector('#selection-buttons');
    const rename = this.#root.querySelector('#rename');
    this.#root.hidden = false;
    if (this.#selected?.edge) {
      const { from, to } = this.#selected.edge;
      const [a, b] = [this.#model.nodes.get(from), this.#model.nodes.get(to)];
      title.textContent = `${nodeLabel(a ?? { id: from })} → ${nodeLabel(b ?? { id: to })}`;
      details.replaceChildren();
      rename.hidden = true;
      buttons.replaceChildren(
        this.#button(
          'Block flow',
          'block-pair',
          () => this.#call('set_flow_block', { node1: from, node2: to, block: 1 }),
          true,
        ),
        this.#button('Unblock flow', 'unblock-pair', () =>
          this.#call('set_flow_block', { node1: from, node2: to, block: 0 }),
        ),
      );
      return;
    }
    const id = this.#selected.node;
    const node = this.#model.nodes.get(id) ?? { id, ips: [], domains: [] };
    const blocked = this.#model.isBlocked(node);
    const allowed = this.#model.isAllowed(node);
    title.textContent = nodeLabel(node);
    const row = (term, value) => [el('dt', {}, term), el('dd', {}, value)];
    details.replaceChildren(
      ...row('node id', node.id),
      ...row('HW addr', node.mac ?? '–'),
      ...row('last seen', formatTime(node.lastseen)),
      ...row('IPs', (node.ips ?? []).join(', ') || '–'),
      ...row('DNS names', (node.domains ?? []).join(', ') || '–'),
    );
    const list = (method, name) => () => this.#call(method, { list: name, node: id });
    buttons.replaceChildren(
      blocked
        ? this.#button('Unblock node', 'unblock-node', list('remove_iplist_node', 'block'))
        : this.#button('Block node', 'block-node', list('add_iplist_node', 'block'), true),
      allowed
        ? this.#button('Stop allowing node', 'unallow-node', list('remove_iplist_node', 'allow'))
        : this.#button('Allow node', 'allow-node', list('add_iplist_node', 'allow')),
      this.#button('Ignore this node', 'ignore-node', list('add_iplist_node', 'ignore')),
    );
    rename.hidden = false;
    rename.querySelector('input').value = node.name ?? '';
  }

  #button(text, action, onclick, danger = false) {
    return el('button', { type: 'button', className: danger ? 'danger' : '', 'data-action': action, onclick }, text);
  }

  async #call(method, params) {
    try {
      await rpc(method, params);
      this.#notify(`${method} done`);
      await this.#model.refreshLists();
      if (this.#selected?.node !== undefined)
        this.#model.setNode(await rpc('get_device_data', { node: this.#selected.node }));
    } catch (error) {
      this.#notify(error.message, 'error');
    }
  }

  async #rename() {
    const id = this.#selected?.node;
    const name = this.#root.querySelector('#rename-input').value.trim();
    if (id === undefined || !name) return;
    await this.#call('set_device_name', { node: id, name });
  }
}
