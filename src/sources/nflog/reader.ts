/**
 * A reader of whole packets logged to one NFLOG group (nft `log group N`),
 * in any network namespace: binds the group with queue-threshold 1 and
 * sequence numbers, decodes each NFULNL_MSG_PACKET with flowgrab's NFLOG
 * codec and hands over the L3 packet with its timestamp. Loss (sequence
 * gaps, undecodable messages) is counted, never silent. The caller installs
 * the rules that log to the group (and removes them); closing the socket
 * unbinds the group.
 */
import { NETLINK_NETFILTER } from '../../netlink/enums.js';
import { openNativeTransport } from '../../netlink/native.js';
import { NFULNL_MSG_PACKET } from '../../netlink/nflog/enums.js';
import { decodeNflogPacket } from '../../netlink/nflog/packet.js';
import { NFNL_SUBSYS_ULOG, nfType } from '../../netlink/nfnetlink.js';
import { NetlinkSocket } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { bindNflogGroup, NflogSequence, nflogTimeMs } from './group.js';

const PACKET_TYPE = nfType(NFNL_SUBSYS_ULOG, NFULNL_MSG_PACKET);

/** A packet logged by an NFLOG rule. */
export interface LoggedPacket {
  /** Milliseconds since the epoch (the kernel's timestamp when it sent one). */
  ts: number;
  /** The packet from its IP header on, cut at the copy range. */
  payload: Buffer;
  /** Netfilter hook number where it was logged. */
  hook: number;
}

/** Options of an NflogReader: group, namespace, copy range, receive buffer. */
export interface NflogReaderOptions {
  /** The NFLOG group to bind (0–65535). */
  group: number;
  netns?: string;
  /** Bytes of each packet copied (default 65535). */
  copyRange?: number;
  /** Socket receive buffer (bytes). */
  recvBufferBytes?: number;
  /** Read on a worker thread in batches (default true); false: the `netlink` package's main-thread reader. */
  batchedReceive?: boolean;
  transport?: TransportFactory;
}

/** Reads one NFLOG group: packets to a listener, losses counted from sequence gaps. */
export class NflogReader {
  /** Packets the kernel dropped before they reached us (sequence gaps) or that did not decode. */
  lost = 0;
  private readonly seq = new NflogSequence();
  private listener: ((p: LoggedPacket) => void) | undefined;

  private constructor(private readonly sock: NetlinkSocket) {
    sock.onEvent((m) => {
      if (m.type !== PACKET_TYPE) return;
      let pkt: ReturnType<typeof decodeNflogPacket>;
      try {
        pkt = decodeNflogPacket(m.payload);
      } catch {
        this.lost++;
        return;
      }
      this.lost += this.seq.take(pkt.seq);
      if (!pkt.payload) return;
      const ts = nflogTimeMs(pkt);
      this.listener?.({ ts, payload: pkt.payload, hook: pkt.hook });
    });
  }

  /** Binds the group; fails with FG_ERR_BUSY when another reader has it. */
  static async open(opts: NflogReaderOptions): Promise<NflogReader> {
    const sock = NetlinkSocket.open(
      {
        protocol: NETLINK_NETFILTER,
        netns: opts.netns,
        recvBufferBytes: opts.recvBufferBytes ?? 4 << 20,
        peek: true,
        batched: opts.batchedReceive ?? true,
        // Output packets carry no kernel timestamp: they are stamped on arrival, so no lingering.
        lingerMs: 0,
      },
      opts.transport ?? openNativeTransport,
    );
    try {
      await bindNflogGroup(sock, opts.group, opts.copyRange ?? 0xffff, opts.netns);
    } catch (err) {
      sock.close();
      throw err;
    }
    return new NflogReader(sock);
  }

  /** Sets the listener for logged packets (one at a time). */
  onPacket(listener: (p: LoggedPacket) => void): void {
    this.listener = listener;
  }

  /** Stops delivering packets and closes the socket: the group is free again when this returns. */
  close(): void {
    this.listener = undefined;
    this.sock.close();
  }
}
