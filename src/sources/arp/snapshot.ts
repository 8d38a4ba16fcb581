/**
 * The kernel's tables, dumped one after the other on the dump socket: links
 * (names), the bridge FDB (ports), then the neighbours. Entries that do not
 * decode are reported to `onBad` and skipped; the dump goes on.
 */
import { NLM_F_DUMP } from '../../netlink/enums.js';
import { AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC } from '../../netlink/nfnetlink.js';
import type { NetlinkMessage } from '../../netlink/nlmsg.js';
import { RTM_NEWLINK, RTM_NEWNEIGH } from '../../netlink/rtnl/enums.js';
import { decodeLink, type LinkEntry, linkDumpRequest } from '../../netlink/rtnl/link.js';
import { decodeNeigh, type NeighEntry, neighDumpRequest } from '../../netlink/rtnl/neigh.js';
import type { NetlinkSocket } from '../../netlink/socket.js';

export const FAMILY = { all: AF_UNSPEC, ipv4: AF_INET, ipv6: AF_INET6 } as const;

export interface Snapshot {
  links: LinkEntry[];
  fdb: NeighEntry[];
  neighbours: NeighEntry[];
}

/** EINTR: the kernel says the table changed under the dump (NLM_F_DUMP_INTR); a retry gets a clean one. */
const interrupted = (err: unknown) => (err as { errno?: number }).errno === 4;

async function runDump<T>(
  sock: NetlinkSocket,
  req: { type: number; payload: Buffer },
  op: string,
  want: number,
  decode: (m: NetlinkMessage) => T,
  onBad: (err: Error) => void,
): Promise<T[]> {
  for (let attempt = 1; ; attempt++) {
    const out: T[] = [];
    try {
      await sock.request(req.type, NLM_F_DUMP, req.payload, {
        op,
        onMessage: (m) => {
          if (m.type !== want) return;
          try {
            out.push(decode(m));
          } catch (err) {
            onBad(err as Error);
          }
        },
      });
      return out;
    } catch (err) {
      if (!interrupted(err) || attempt >= 3) throw err;
    }
  }
}

/** Every link, for interface names. */
export function dumpLinks(sock: NetlinkSocket, onBad: (err: Error) => void): Promise<LinkEntry[]> {
  return runDump(sock, linkDumpRequest(), 'rtnetlink link dump', RTM_NEWLINK, (m) => decodeLink(m.payload), onBad);
}

export async function takeSnapshot(
  sock: NetlinkSocket,
  family: keyof typeof FAMILY,
  onBad: (err: Error) => void,
): Promise<Snapshot> {
  const links = await dumpLinks(sock, onBad);
  const byNeigh = (m: NetlinkMessage) => decodeNeigh(m.payload);
  // An AF_UNSPEC neighbour dump leaves out the FDB: it needs a dump of its own.
  const fdb = await runDump(sock, neighDumpRequest(AF_BRIDGE), 'bridge fdb dump', RTM_NEWNEIGH, byNeigh, onBad);
  const req = neighDumpRequest(FAMILY[family]);
  const neighbours = await runDump(sock, req, 'neighbour dump', RTM_NEWNEIGH, byNeigh, onBad);
  return { links, fdb, neighbours };
}
