/**
 * What the kernel tells the SPIN core: conntrack counter deltas (nodes,
 * device flows, the second's traffic), DNS queries and answers (nodes by
 * name, addresses of listed names) and the neighbour table (devices). A new
 * node made from traffic takes its MAC from the neighbour table at once when
 * the table has it (announce.ts asks the kernel otherwise).
 *
 * The sources deliver in no order between them, so nothing here depends on
 * which record comes first: a delta whose end is not a device yet is held
 * (pending.ts) and applied when that end's MAC is learned (`onMacLearned`);
 * nodes merged meanwhile are followed by the announcer when it publishes.
 */
import { answerTrusted, type ConntrackRecord, DNS_MAX_TTL_S, type DnsRecord, type NeighRecord } from 'flowgrab';
import type { IngestHost } from './ingest-host.js';
import { canonicalIp, prefixContains } from './ip.js';
import { dnsQueryMessage } from './messages.js';
import type { SpinNode } from './model.js';
import { takeAmount } from './pending.js';

const NO_SERVERS: ReadonlySet<string> = new Set();

export function onConntrack(core: IngestHost, r: ConntrackRecord): void {
  core.counters.conntrack++;
  const d = r.delta;
  if (!d) return;
  const packets = d.orig.packets + d.reply.packets;
  const bytes = d.orig.bytes + d.reply.bytes;
  if (packets === 0 && bytes === 0) return;
  const src = r.orig.src;
  const dst = r.orig.dst;
  const ig = core.lists.ignore;
  if (ig.containsIp(src) || ig.containsIp(dst)) return;
  if (!inScope(core, src) && !inScope(core, dst)) return;
  const s = nodeOfIp(core, src, true);
  const t = nodeOfIp(core, dst, true);
  const dport = r.orig.dport ?? 0;
  const sport = r.orig.sport ?? 0;
  const icmp = r.orig.icmp?.type ?? 0;
  if (s.mac) core.model.countFlow(s, t, dport, icmp, packets, bytes);
  if (t.mac) core.model.countFlow(t, s, dport, icmp, packets, bytes);
  const published = !!(s.mac || t.mac || core.opts.local);
  if (published) core.traffic.add(s, t, r.protonum, sport, dport, bytes, packets);
  // An end without a MAC may yet turn out to be a device (its neighbour event not handled yet).
  core.pending.hold({
    src,
    dst,
    proto: r.protonum,
    sport,
    dport,
    icmp,
    packets,
    bytes,
    srcIsDevice: !!s.mac,
    dstIsDevice: !!t.mac,
    published,
  });
}

/**
 * A MAC was learned for an address (neighbour event or the kernel's answer):
 * the deltas held for it count on the device now, and traffic not yet
 * published goes into this second's.
 */
export function onMacLearned(core: IngestHost, ip: string): void {
  for (const h of core.pending.take(ip)) {
    const s = core.model.nodeOfIp(h.src, false);
    const t = core.model.nodeOfIp(h.dst, false);
    if (s.mac) {
      const a = takeAmount(h.srcUncounted);
      if (a) core.model.countFlow(s, t, h.dport, h.icmp, a.packets, a.bytes);
    }
    if (t.mac) {
      const a = takeAmount(h.dstUncounted);
      if (a) core.model.countFlow(t, s, h.dport, h.icmp, a.packets, a.bytes);
    }
    if (!s.mac && !t.mac) continue;
    const a = takeAmount(h.unpublished);
    if (a) core.traffic.add(s, t, h.proto, h.sport, h.dport, a.bytes, a.packets);
  }
}

export function onDns(core: IngestHost, r: DnsRecord): void {
  core.counters.dns++;
  if (r.error || !r.qname) return;
  const ig = core.lists.ignore;
  if (!inScope(core, r.client)) return;
  if (r.kind === 'response') {
    // Only answers to a query the capture saw (rtt set): any LAN host can send a response nobody asked for, and
    // would otherwise tie a blocked name to an address of its choosing (blocking it) for a TTL of its choosing.
    if (r.rtt === undefined) return;
    // Only the router's own resolver's answers, or those of servers the owner named, fill the lists: a device
    // asking its own server would tie a listed name to any address (unblocking it, or cutting a device off).
    // Such answers still name the addresses in the view (as SPIN's do).
    const trusted = answerTrusted(r, core.opts.trustedResolvers ?? NO_SERVERS);
    const expiryBase = core.model.now();
    for (const res of r.resolved) {
      const ip = canonicalIp(res.ip);
      if (!ip) continue;
      if (trusted) {
        const ttl = Math.min(Math.max(0, res.ttl), DNS_MAX_TTL_S);
        const exp = expiryBase + (ttl + core.periods.dnsGraceS) * 1000;
        const names = [res.name, ...res.via];
        for (const name of names) core.blocks.remember(name, ip, exp);
        core.followNames(names, ip, exp);
      }
      if (ig.containsIp(ip)) continue;
      core.model.learn({ ips: [ip], domains: [withDot(res.name)] });
    }
    core.flushNodeInfo();
    return;
  }
  const client = canonicalIp(r.client);
  if (!client || ig.containsIp(client)) return;
  const from = nodeOfIp(core, client, false);
  const qname = withDot(r.qname);
  const q = core.model.learn({ domains: [qname] });
  core.flushNodeInfo();
  core.announcer.emit((id) => {
    const a = id(from);
    const b = id(q);
    return a === undefined || b === undefined ? undefined : dnsQueryMessage(a, b, qname);
  });
}

export function onNeigh(core: IngestHost, r: NeighRecord): void {
  core.counters.neigh++;
  const ip = canonicalIp(r.ip);
  if (!ip) return;
  if (r.type === 'delete' || !r.usable || !r.mac) {
    core.neighbours.remove(ip);
    return;
  }
  if (core.lists.ignore.containsIp(ip)) return;
  if (!inScope(core, ip) && !core.opts.monitor?.interfaces.includes(r.ifname ?? '')) return;
  core.neighbours.add(r.mac, ip);
  core.model.learn({ mac: r.mac, ips: [ip] });
  onMacLearned(core, ip);
  core.flushNodeInfo();
}

/** True when monitoring is not limited, or the address is inside a monitored prefix. */
export function inScope(core: IngestHost, ip: string): boolean {
  const scope = core.opts.monitor;
  return !scope || scope.prefixes.some((p) => prefixContains(p, ip));
}

/** The node of an address; a new one takes its MAC from the neighbour table when the table has it. */
function nodeOfIp(core: IngestHost, ip: string, seen: boolean): SpinNode {
  const mac = core.model.ofIp(ip) ? undefined : core.neighbours.macOf(ip);
  return mac ? core.model.learn({ mac, ips: [ip] }) : core.model.nodeOfIp(ip, seen);
}

const withDot = (name: string) => (name.endsWith('.') ? name : `${name}.`);
