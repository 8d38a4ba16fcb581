/** Conntrack NEW events on a raw NetlinkSocket, as the wire-layer tests count them. */
import { NFNLGRP_CONNTRACK_NEW } from '../../src/netlink/conntrack/enums.js';
import type { NetlinkSocket } from '../../src/netlink/socket.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { waitFor } from '../../src/testing/lab/index.js';

/** IPCTNL_MSG_CT_NEW in the conntrack subsystem: the message type of a NEW event. */
const CT_NEW = 0x100;

/**
 * Joins `sock` to the NEW group, makes `count` UDP flows in `netns` (addresses from `base`), and waits (bounded,
 * throws) until the socket saw as many NEW events; returns how many it saw.
 */
export async function newEventsOfFlood(
  sock: NetlinkSocket,
  netns: string,
  flood: { count: number; base: number },
  what: string,
): Promise<number> {
  let seen = 0;
  sock.onEvent((m) => {
    if (m.type === CT_NEW) seen++;
  });
  sock.joinGroup(NFNLGRP_CONNTRACK_NEW);
  floodUdpSync(netns, flood);
  await waitFor(() => seen >= flood.count, { timeoutMs: 10_000, what });
  return seen;
}
