/** A conntrack table dump on a request socket, decoded record by record as datagrams arrive. */
import { ctDumpRequest } from '../../netlink/conntrack/messages.js';
import { NLM_F_DUMP } from '../../netlink/enums.js';
import type { NetlinkSocket } from '../../netlink/socket.js';
import { conntrackRecordAt } from './decode.js';
import type { ConntrackConfig } from './options.js';
import type { ConntrackRecord } from './record.js';

const FAMILY = { all: 0, ipv4: 2, ipv6: 10 } as const;

/** Resolves with the number of records emitted; undecodable entries go to `onBad` and the dump goes on. */
export async function runDump(
  sock: NetlinkSocket,
  cfg: ConntrackConfig,
  emit: (r: ConntrackRecord) => void,
  onBad: (err: Error) => void = () => {},
): Promise<number> {
  const req = ctDumpRequest({ family: FAMILY[cfg.family], mark: cfg.mark, markMask: cfg.markMask, zone: cfg.zone });
  let n = 0;
  await sock.request(req.type, NLM_F_DUMP, req.payload, {
    op: 'ctnetlink dump',
    onPayload: (b, start, end, type, flags) => {
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
    },
  });
  return n;
}
