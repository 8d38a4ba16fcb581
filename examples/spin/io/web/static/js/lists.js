// The block, allow and ignore lists with a remove button per address
// (`remove_iplist_ip`) and, for the ignore list, SPIN's reset
// (`reset_iplist_ignore`).
import { el } from './labels.js';
import { LISTS } from './model.js';
import { rpc } from './rpc.js';

export class ListsPanel {
  #root;
  #model;
  #notify;

  constructor(root, model, notify) {
    this.#root = root;
    this.#model = model;
    this.#notify = notify;
    model.on('list', () => this.render());
    this.render();
  }

  render() {
    this.#root.replaceChildren(
      ...LISTS.map((name) => {
        const ips = this.#model.lists[name];
        return el(
          'details',
          { 'data-list': name, open: name === 'block' && ips.length > 0 },
          el('summary', {}, `${name} (${ips.length})`),
          ips.map((ip) =>
            el(
              'div',
              { className: 'list-entry', 'data-ip': ip },
              el('span', {}, ip),
              el(
                'button',
                { type: 'button', onclick: () => this.#call('remove_iplist_ip', { list: name, ip }) },
                'Remove',
              ),
            ),
          ),
          name === 'ignore'
            ? el('button', { type: 'button', onclick: () => this.#call('reset_iplist_ignore') }, 'Reset ignore list')
            : null,
        );
      }),
    );
  }

  async #call(method, params) {
    try {
      await rpc(method, params);
      await this.#model.refreshLists();
    } catch (error) {
      this.#notify(error.message, 'error');
    }
  }
}
