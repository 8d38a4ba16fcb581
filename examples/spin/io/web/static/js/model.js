// What the page knows: SPIN's nodes (from retained `nodeInfo` messages and
// `get_device_data`), the block/allow/ignore lists, and the messages of
// `SPIN/traffic/#` turned into events the views listen to.
import { rpc } from './rpc.js';

export const LISTS = ['block', 'ignore', 'allow'];

/** SPIN names a list broadcast after the caller's string, which may be a prefix ("b" = block). */
export function listNamed(command) {
  return LISTS.find((name) => name.startsWith(command));
}

export class SpinModel extends EventTarget {
  nodes = new Map();
  lists = { block: [], ignore: [], allow: [] };
  #fetching = new Map();

  /** Handles one MQTT message of `SPIN/traffic/#`. */
  handle(topic, text) {
    if (topic.startsWith('SPIN/traffic/node/')) {
      const id = Number(topic.slice('SPIN/traffic/node/'.length));
      // An empty retained message clears a node that was deleted or merged away.
      if (text === '') this.removeNode(id);
      else this.setNode(JSON.parse(text).result);
      return;
    }
    if (text === '') return;
    const message = JSON.parse(text);
    const result = message.result;
    switch (message.command) {
      case 'serverRestart':
        this.emit('restart');
        return;
      case 'traffic':
        this.emit('traffic', result);
        return;
      case 'blocked':
        if (result) this.emit('blocked', result);
        return;
      case 'dnsquery':
        this.emit('dnsquery', result);
        return;
      case 'nodeMerged':
        this.removeNode(result.id, result['merged-to']);
        return;
      case 'nodeDeleted':
        this.removeNode(result.id);
        return;
      default: {
        const list = Array.isArray(result) ? listNamed(message.command) : undefined;
        if (list) this.setList(list, result);
      }
    }
  }

  setNode(node) {
    if (!node || typeof node.id !== 'number') return;
    this.nodes.set(node.id, node);
    this.emit('node', node);
  }

  removeNode(id, mergedTo) {
    const known = this.nodes.delete(id);
    if (known || mergedTo !== undefined) this.emit('remove', { id, mergedTo });
  }

  setList(name, ips) {
    this.lists[name] = [...ips];
    this.emit('list', { name, ips: this.lists[name] });
  }

  /** The node from the cache, else asked for once with `get_device_data`. */
  async ensureNode(id) {
    const cached = this.nodes.get(id);
    if (cached) return cached;
    if (!this.#fetching.has(id)) {
      const pending = rpc('get_device_data', { node: id })
        .then((node) => {
          this.setNode(node);
          return node;
        })
        .catch(() => undefined)
        .finally(() => this.#fetching.delete(id));
      this.#fetching.set(id, pending);
    }
    return this.#fetching.get(id);
  }

  async refreshLists() {
    await Promise.all(LISTS.map(async (name) => this.setList(name, await rpc('list_iplist', { list: name }))));
  }

  async refreshDevices() {
    const devices = await rpc('list_devices');
    for (const device of devices) this.setNode(device);
    return devices;
  }

  devices() {
    return [...this.nodes.values()]
      .filter((n) => n.mac && !this.isIgnored(n))
      .sort((a, b) => a.mac.localeCompare(b.mac));
  }

  onList(node, name) {
    return node?.ips?.some((ip) => this.lists[name].includes(ip)) ?? false;
  }

  /** SPIN's `is_blocked` is not restored after a restart; the block list tells as well. */
  isBlocked(node) {
    return Boolean(node?.is_blocked) || this.onList(node, 'block');
  }

  isAllowed(node) {
    return Boolean(node?.is_excepted) || this.onList(node, 'allow');
  }

  isIgnored(node) {
    return this.onList(node, 'ignore');
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, listener) {
    this.addEventListener(type, (event) => listener(event.detail));
  }
}
