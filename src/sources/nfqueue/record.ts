/**
 * PacketRecord (docs/architecture.md#records): the zod schema is the single source of
 * the type. What the NFQUEUE source emits is a PacketRecord that also
 * carries its verdict() method (QueuedPacket, in queued.ts).
 */
import { z } from 'zod';

/** A queued packet (zod schema and type): parsed headers and payload. */
export const PacketRecord = z.object({
  /** The kernel's per-queue id: what a verdict names. Ids count up, so a gap means packets never seen. */
  packetId: z.number().int().nonnegative(),
  queue: z.number().int().min(0).max(65535),
  family: z.enum(['ipv4', 'ipv6', 'other']),
  /** Ethertype as the kernel gave it (0x0800 IPv4, 0x86dd IPv6). */
  hwProtocol: z.number().int(),
  /** The netfilter hook the packet was queued from. */
  hook: z.enum(['prerouting', 'input', 'forward', 'output', 'postrouting', 'unknown']),
  /** The packet mark (0 when unmarked). */
  mark: z.number().int().nonnegative(),
  indev: z.number().int().optional(),
  indevName: z.string().optional(),
  outdev: z.number().int().optional(),
  outdevName: z.string().optional(),
  /** Bridge ports, when the packet crossed a bridge. */
  physindev: z.number().int().optional(),
  physoutdev: z.number().int().optional(),
  /** Owner of the local socket that sent it (locally generated packets). */
  uid: z.number().int().optional(),
  gid: z.number().int().optional(),
  /** Source MAC (received packets). */
  hwaddr: z.string().optional(),
  /** The packet's full length; `payload` may hold fewer bytes (copyRange). */
  length: z.number().int().nonnegative(),
  ip: z
    .object({
      src: z.string(),
      dst: z.string(),
      /** IP protocol number of the transport header (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 …). */
      proto: z.number().int(),
      ttl: z.number().int().optional(),
      hopLimit: z.number().int().optional(),
      /** A non-first fragment: no transport header. */
      fragment: z.literal(true).optional(),
    })
    .optional(),
  tcp: z.object({ sport: z.number().int(), dport: z.number().int(), flags: z.number().int() }).optional(),
  udp: z.object({ sport: z.number().int(), dport: z.number().int() }).optional(),
  icmp: z.object({ type: z.number().int(), code: z.number().int() }).optional(),
  /** The packet from its L3 header on, as copied (up to copyRange bytes; empty with copyRange 0). */
  payload: z.instanceof(Buffer),
  /** Why the headers could not be read; the packet still needs (and gets) a verdict. */
  error: z.string().optional(),
  netns: z.string().optional(),
  /** ms since the epoch: the kernel's receive timestamp when it gave one, else when flowgrab read the packet. */
  ts: z.number(),
});
export type PacketRecord = z.infer<typeof PacketRecord>;
