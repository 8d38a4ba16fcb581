/**
 * What every NFLOG reader does with its group (the DNS feed and NflogReader
 * alike): bind it with a copy range, queue-threshold 1 and sequence numbers;
 * count sequence gaps as loss; read a packet's time.
 */
import { FlowgrabError } from '../../errors.js';
import {
  NFLOG_CONFIG_TYPE,
  nflogBind,
  nflogFlags,
  nflogMode,
  nflogQueueThreshold,
} from '../../netlink/nflog/config.js';
import { NFULNL_CFG_F_SEQ } from '../../netlink/nflog/enums.js';
import type { NflogPacket } from '../../netlink/nflog/packet.js';
import { NetlinkOpError, type NetlinkSocket } from '../../netlink/socket.js';

/** Binds `group` on `sock`; FG_ERR_BUSY when another socket (in `netns`) has it. */
export async function bindNflogGroup(
  sock: NetlinkSocket,
  group: number,
  copyRange: number,
  netns?: string,
): Promise<void> {
  const config = (payload: Buffer, what: string) =>
    sock.request(NFLOG_CONFIG_TYPE, 0, payload, { op: `nflog ${what} (group ${group})` });
  try {
    await config(nflogBind(group), 'bind');
  } catch (err) {
    if (err instanceof NetlinkOpError && err.errnoName === 'EPERM') {
      throw new FlowgrabError(
        'FG_ERR_BUSY',
        `NFLOG group ${group} is already bound by another reader in ${netns ?? 'this namespace'}`,
        { op: 'nflog bind', cause: err },
      );
    }
    throw err;
  }
  await config(nflogMode(group, copyRange), 'copy mode');
  await config(nflogQueueThreshold(group, 1), 'queue threshold');
  await config(nflogFlags(group, NFULNL_CFG_F_SEQ), 'flags');
}

/** Follows the per-group sequence numbers (NFULNL_CFG_F_SEQ): a gap is an exact count of packets lost. */
export class NflogSequence {
  private expected?: number;

  /** Packets lost before the one numbered `seq` (0 without a number or a gap; wrap-around safe). */
  take(seq: number | undefined): number {
    if (seq === undefined) return 0;
    let lost = 0;
    if (this.expected !== undefined && seq !== this.expected) {
      const gap = (seq - this.expected) >>> 0;
      if (gap < 0x8000_0000) lost = gap;
    }
    this.expected = (seq + 1) >>> 0;
    return lost;
  }
}

/** The packet's time in ms since the epoch: the kernel's timestamp when it sent one, else now. */
export const nflogTimeMs = (pkt: NflogPacket): number =>
  pkt.timestamp ? Number(pkt.timestamp.sec) * 1000 + Number(pkt.timestamp.usec) / 1000 : Date.now();
