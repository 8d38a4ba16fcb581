// Wires the page together: the MQTT-over-WebSocket feed (`SPIN/traffic/#`,
// like SPIN's bubble app), the model, the graph and the panels.
import { DevicesPanel } from './devices.js';
import { GraphView } from './graph.js';
import { formatBytes } from './labels.js';
import { ListsPanel } from './lists.js';
import { SpinModel } from './model.js';
import { SelectionPanel } from './selection.js';
import { Sparkline } from './sparkline.js';

const CONFIG_URL = '/spin_web/config.json';

/**
 * The broker's WebSocket URL: SPIN's `?mqtt_host=` / `?mqtt_port=` win, then
 * the app's config, then SPIN's default (this host, port 1884, path /mqtt).
 * `mqtt_host` may only name the host the page came from or the configured
 * broker's: a link to the page with another host would show a logged-in
 * user whatever a broker of the link's author publishes.
 */
export function brokerUrl(config, location) {
  const query = new URLSearchParams(location.search);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = new URL(config.mqttWsUrl ?? `${scheme}//${location.hostname}:1884/mqtt`);
  // A wildcard listen address means "wherever the page came from".
  if (['0.0.0.0', '[::]'].includes(url.hostname)) url.hostname = location.hostname;
  const asked = query.get('mqtt_host');
  // An IPv6 literal needs its brackets in a URL (location.hostname already has them).
  const host = asked?.includes(':') && !asked.startsWith('[') ? `[${asked}]` : asked;
  if (host) {
    const known = [location.hostname, url.hostname].map((h) => h.toLowerCase());
    if (known.includes(host.toLowerCase())) url.hostname = host;
    else console.warn(`mqtt_host=${asked} ignored: only this page's host or the configured broker's`);
  }
  const port = query.get('mqtt_port');
  if (port && /^\d{1,5}$/.test(port)) url.port = port;
  return url.toString();
}

function notifier(box) {
  let timer;
  return (text, kind = 'info') => {
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => (box.hidden = true), kind === 'error' ? 10_000 : 4000);
  };
}

async function start() {
  const notify = notifier(document.getElementById('notice'));
  const status = document.getElementById('mqtt-status');
  const model = new SpinModel();
  const graph = new GraphView(document.getElementById('graph'), model);
  const devices = new DevicesPanel(document.getElementById('devices'), model, notify);
  const selection = new SelectionPanel(document.getElementById('selection'), model, notify);
  new ListsPanel(document.getElementById('lists'), model, notify);
  const sparkline = new Sparkline(document.getElementById('sparkline'));
  const totals = document.getElementById('totals');
  // For the developer tools: `spinView.graph.snapshot()`, `spinView.model.nodes`.
  window.spinView = { model, graph };

  let locked = false;
  document.getElementById('fit').addEventListener('click', () => graph.fit());
  const lock = document.getElementById('lock');
  lock.addEventListener('click', () => {
    locked = !locked;
    lock.setAttribute('aria-pressed', String(locked));
    lock.textContent = locked ? 'Unlock view' : 'Lock view';
  });

  graph.network.on('click', (params) => {
    if (params.nodes.length) selection.selectNode(params.nodes[0]);
    else if (params.edges.length) selection.selectEdge(graph.edge(params.edges[0]));
    else selection.clear();
  });

  model.on('restart', () => window.location.reload());
  model.on('traffic', async (traffic) => {
    totals.textContent = `${formatBytes(traffic.total_size)}/s · ${traffic.total_count} pkt/s`;
    sparkline.add(traffic.total_size);
    for (const flow of traffic.flows) {
      await Promise.all([model.ensureNode(flow.from), model.ensureNode(flow.to)]);
      graph.flow(flow.from, flow.to, { port: flow.to_port });
    }
    if (locked) graph.fit();
  });
  model.on('blocked', async (b) => {
    await Promise.all([model.ensureNode(b.from), model.ensureNode(b.to)]);
    graph.flow(b.from, b.to, { port: b.to_port, kind: 'blocked' });
  });
  model.on('dnsquery', async (q) => {
    await Promise.all([model.ensureNode(q.from), model.ensureNode(q.queriednode)]);
    graph.flow(q.from, q.queriednode, { kind: 'dns' });
  });
  devices.onFlows = (device, flows) => {
    for (const flow of flows) {
      graph.flow(device.id, flow.to, { port: flow.dst_port, kind: flow.blocked ? 'blocked' : 'traffic' });
      // An unblocked flow loses its red edge at once, not after ten idle minutes.
      if (!flow.blocked) graph.clearBlocked(device.id, flow.to);
    }
  };
  model.on('node', (node) => {
    if (node.mac && !model.isIgnored(node)) graph.show(node.id, 'device');
  });
  setInterval(() => sparkline.tick(), 1000);

  const config = await fetch(CONFIG_URL)
    .then((r) => r.json())
    .catch(() => ({}));
  const url = brokerUrl(config, window.location);
  status.dataset.url = url;
  const clientId = `Web-${Math.floor(Math.random() * 0xfffff)
    .toString(16)
    .padStart(5, '0')}`;
  const client = mqtt.connect(url, {
    clientId,
    protocolVersion: 4,
    reconnectPeriod: 2000,
    connectTimeout: 5000,
    // mqtt.js rebuilds the URL and loses the brackets of an IPv6 host; use it as given.
    transformWsUrl: () => url,
  });
  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  client.on('connect', async () => {
    setStatus('connected', `connected to ${url}`);
    client.subscribe('SPIN/traffic/#');
    try {
      await Promise.all([model.refreshLists(), model.refreshDevices()]);
      await devices.refresh();
      graph.fit();
    } catch (error) {
      notify(error.message, 'error');
    }
  });
  client.on('message', (topic, payload) => {
    try {
      model.handle(topic, payload.toString());
    } catch (error) {
      notify(`bad message on ${topic}: ${error.message}`, 'error');
    }
  });
  client.on('offline', () => setStatus('offline', `not connected (${url})`));
  client.on('error', (error) => setStatus('offline', `MQTT error: ${error.message}`));
}

start();
