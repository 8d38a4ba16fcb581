/** A decoded NFQUEUE packet message → PacketRecord: metadata plus the parsed IP and transport headers. */

import { AF_INET, AF_INET6 } from '../../netlink/nfnetlink.js';
import { NF_INET_HOOK_NAMES } from '../../netlink/nfqueue/enums.js';
import type { NfqPacket } from '../../netlink/nfqueue/packet.js';
import { parseIpPacket } from '../packet.js';
import type { PacketRecord } from './record.js';

const EMPTY = Buffer.alloc(0);
const hex2 = (b: number) => b.toString(16).padStart(2, '0');

export function formatHwaddr(b: Buffer): string {
  return Array.from(b, hex2).join(':');
}

/** ifindex → interface name, when known. */
export type IfName = (ifindex: number) => string | undefined;

export function toPacketRecord(p: NfqPacket, now: number, ifname?: IfName, netns?: string): PacketRecord {
  const payload = p.payload ?? EMPTY;
  const r: PacketRecord = {
    packetId: p.id,
    queue: p.queue,
    family: p.family === AF_INET ? 'ipv4' : p.family === AF_INET6 ? 'ipv6' : 'other',
    hwProtocol: p.hwProtocol,
    hook: NF_INET_HOOK_NAMES[p.hook] ?? 'unknown',
    mark: p.mark ?? 0,
    length: p.capLen ?? payload.length,
    payload,
    ts: p.timestamp ? Number(p.timestamp.sec) * 1000 + Number(p.timestamp.usec) / 1000 : now,
  };
  if (p.indev !== undefined) {
    r.indev = p.indev;
    const n = ifname?.(p.indev);
    if (n !== undefined) r.indevName = n;
  }
  if (p.outdev !== undefined) {
    r.outdev = p.outdev;
    const n = ifname?.(p.outdev);
    if (n !== undefined) r.outdevName = n;
  }
  if (p.physindev !== undefined) r.physindev = p.physindev;
  if (p.physoutdev !== undefined) r.physoutdev = p.physoutdev;
  if (p.uid !== undefined) r.uid = p.uid;
  if (p.gid !== undefined) r.gid = p.gid;
  if (p.hwaddr && p.hwaddr.length > 0) r.hwaddr = formatHwaddr(p.hwaddr);
  if (netns !== undefined) r.netns = netns;
  if (payload.length > 0) headers(r, payload);
  return r;
}

function headers(r: PacketRecord, payload: Buffer): void {
  let ip: ReturnType<typeof parseIpPacket>;
  try {
    ip = parseIpPacket(payload);
  } catch (err) {
    r.error = (err as Error).message;
    return;
  }
  r.ip = { src: ip.src, dst: ip.dst, proto: ip.proto };
  if (ip.family === 'ipv4') r.ip.ttl = ip.ttl;
  else r.ip.hopLimit = ip.ttl;
  if (ip.fragment) {
    r.ip.fragment = true;
    return;
  }
  if (ip.proto === 6 && ip.sport !== undefined) r.tcp = { sport: ip.sport, dport: ip.dport!, flags: ip.tcpFlags! };
  else if ((ip.proto === 17 || ip.proto === 136) && ip.sport !== undefined)
    r.udp = { sport: ip.sport, dport: ip.dport! };
  else if ((ip.proto === 1 || ip.proto === 58) && ip.data.length >= 2) r.icmp = { type: ip.data[0], code: ip.data[1] };
}
