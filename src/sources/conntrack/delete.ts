/**
 * Deleting conntrack entries: by predicate over a dump (e.g. every flow of a
 * blocked device) or by tuple. Entries that vanish before their delete
 * (ENOENT) are not errors and are not counted.
 */
import { FlowgrabError } from '../../errors.js';
import type { CtEntry } from '../../netlink/conntrack/entry.js';
import { ctDeleteRequest, ctDumpRequest, decodeCtMessage } from '../../netlink/conntrack/messages.js';
import type { CtTuple } from '../../netlink/conntrack/tuple.js';
import { NETLINK_NETFILTER, NLM_F_DUMP } from '../../netlink/enums.js';
import { ipFamily } from '../../netlink/ip.js';
import { openNativeTransport } from '../../netlink/native.js';
import { NetlinkOpError, NetlinkSocket } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { type ConntrackRecord, toConntrackRecord } from './record.js';

/** Where and how conntrack entries are deleted (netns, family). */
export interface DeleteOptions {
  netns?: string;
  transport?: TransportFactory;
}

async function deleteEntries(sock: NetlinkSocket, entries: CtEntry[]): Promise<number> {
  let deleted = 0;
  for (const e of entries) {
    if (!e.orig) continue;
    const req = ctDeleteRequest(e.family, e.orig, { id: e.id, zone: e.zone });
    try {
      await sock.request(req.type, 0, req.payload, { op: 'ctnetlink delete' });
      deleted++;
    } catch (err) {
      if (!(err instanceof NetlinkOpError && err.errnoName === 'ENOENT')) throw err;
    }
  }
  return deleted;
}

/** Deletes every entry for which `match` is true; resolves with how many were deleted. */
export async function deleteConntrack(
  match: (r: ConntrackRecord) => boolean,
  opts: DeleteOptions = {},
): Promise<number> {
  const sock = NetlinkSocket.open(
    { protocol: NETLINK_NETFILTER, netns: opts.netns, pulled: true },
    opts.transport ?? openNativeTransport,
  );
  try {
    const doomed: CtEntry[] = [];
    const req = ctDumpRequest();
    const now = Date.now();
    await sock.request(req.type, NLM_F_DUMP, req.payload, {
      op: 'ctnetlink dump',
      onMessage: (m) => {
        try {
          const { entry } = decodeCtMessage(m);
          if (match(toConntrackRecord('dump', entry, now, opts.netns))) doomed.push(entry);
        } catch {
          // An entry we cannot decode is one we cannot match: leave it alone.
        }
      },
    });
    return await deleteEntries(sock, doomed);
  } finally {
    sock.close();
  }
}

/** Deletes the entry whose original tuple is `orig`; resolves with 1, or 0 when there was none. */
export async function deleteConntrackTuple(
  orig: CtTuple,
  opts: DeleteOptions & { zone?: number } = {},
): Promise<number> {
  const fam = ipFamily(orig.src);
  if (!fam || fam !== ipFamily(orig.dst)) {
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `bad tuple addresses ${orig.src} → ${orig.dst}`, {
      op: 'delete',
    });
  }
  const sock = NetlinkSocket.open(
    { protocol: NETLINK_NETFILTER, netns: opts.netns, pulled: true },
    opts.transport ?? openNativeTransport,
  );
  try {
    return await deleteEntries(sock, [{ family: fam === 4 ? 2 : 10, orig, zone: opts.zone }]);
  } finally {
    sock.close();
  }
}
