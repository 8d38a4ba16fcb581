/** A conntrack table dump on a request socket, decoded record by record as datagrams arrive. */
import { ctDumpRequest } from '../../netlink/conntrack/messages.js';
import { NLM_F_DUMP } from '../../netlink/enums.js';
import type { NetlinkSocket, PayloadListener } from '../../netlink/socket.js';
import { conntrackRecordAt } from './decode.js';
import type { ConntrackConfig } from './options.js';
import type { ConntrackRecord } from './record.js';

const FAMILY = { all: 0, ipv4: 2, ipv6: 10 } as const;

/** The dump request for `cfg`; each entry's message goes to `onPayload` in place (valid during the call only). */
export async function requestDump(
  sock: NetlinkSocket,
  cfg: ConntrackConfig,
  onPayload: PayloadListener,
): Promise<void> {
  const req = ctDumpRequest({ family: FAMILY[cfg.family], mark: cfg.mark, markMask: cfg.markMask, zone: cfg.zone });
  await sock.request(req.type, NLM_F_DUMP, req.payload, { op: 'ctnetlink dump', onPayload });
}

/** Resolves with the number of records emitted; undecodable entries go to `onBad` and the dump goes on. */
export async function runDump(
  sock: NetlinkSocket,
  cfg: ConntrackConfig,
  emit: (r: ConntrackRecord) => void,
  onBad: (err: Error) => void = () => {},
): Promise<number> {
  let n = 0;
  await requestDump(sock, cfg, (b, start, end, type, flags) => {
    let r: ConntrackRecord;
    try {
      r = conntrackRecordAt(b, start, end, type, flags, Date.now(), cfg.netns);
    } catch (err) {
      onBad(err as Error);
      return;
    }
    // Older kernels ignore the zone filter: check it here as well.
    if (cfg.zone !== undefined && (r.zone ?? 0) !== cfg.zone) return;
    emit(r);
    n++;
  });
  return n;
}
