// How nodes, ports and amounts are shown, as SPIN's bubble app shows them.

const SERVICES = {
  20: 'ftp-data',
  21: 'ftp',
  22: 'ssh',
  23: 'telnet',
  25: 'smtp',
  53: 'dns',
  67: 'dhcp',
  68: 'dhcp',
  80: 'http',
  110: 'pop3',
  123: 'ntp',
  143: 'imap',
  161: 'snmp',
  443: 'https',
  465: 'smtps',
  587: 'submission',
  853: 'dns-tls',
  993: 'imaps',
  995: 'pop3s',
  1883: 'mqtt',
  1900: 'ssdp',
  3478: 'stun',
  5353: 'mdns',
  8080: 'http-alt',
  8443: 'https-alt',
  8883: 'mqtts',
};

/** Name, else MAC, else first domain, else first IP (multicast named as such). */
export function nodeLabel(node) {
  if (!node) return '?';
  if (node.name) return node.name;
  if (node.mac) return node.mac;
  if (node.domains?.length) return node.domains[0].replace(/\.$/, '');
  const ip = node.ips?.[0];
  if (!ip) return `node ${node.id}`;
  if (/^2(2[4-9]|3\d)\./.test(ip)) return 'Multicast IPv4';
  if (/^ff/i.test(ip)) return 'Multicast IPv6';
  return ip;
}

/** For the peer of a flow a DNS name says more than a MAC: name, domain, IP, then MAC. */
export function peerLabel(node) {
  if (!node) return '?';
  if (node.name) return node.name;
  if (node.domains?.length || node.ips?.length) return nodeLabel({ ...node, mac: undefined });
  return nodeLabel(node);
}

export function serviceName(port) {
  return SERVICES[port] ?? String(port);
}

/** A flow's port or ICMP type as a short text. */
export function flowService(flow) {
  if (flow.dst_port) return serviceName(flow.dst_port);
  if (flow.icmp_type) return `icmp ${flow.icmp_type}`;
  return '–';
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function formatTime(unixSeconds) {
  if (!unixSeconds) return '–';
  return new Date(unixSeconds * 1000).toLocaleString();
}

/** A small element with text content, attributes and children. */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'className') element.className = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}
