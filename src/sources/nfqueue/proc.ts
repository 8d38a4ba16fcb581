/**
 * /proc/net/netfilter/nfnetlink_queue: per-queue counters the netlink
 * messages do not carry, read in the source's namespace. Columns: queue
 * portid queue_total copy_mode copy_range queue_dropped queue_user_dropped
 * id_sequence 1.
 */
import { readFileSync } from 'node:fs';
import { withNetns } from '../../netlink/syscall.js';

export interface QueueStats {
  /** Packets held for the reader now. */
  total: number;
  /** Dropped because the queue was full (maxLen) and fail-open was off. */
  dropped: number;
  /** Dropped because the reader's socket buffer was full and fail-open was off. */
  userDropped: number;
  idSequence: number;
}

export interface QueueStatsLine extends QueueStats {
  /** Netlink port of the socket that bound the queue. */
  portid: number;
}

/** The counters of `queue` (as bound by netlink port `portid`, when given), or undefined when it is not bound. */
export function readQueueStats(queue: number, portid?: number, netns?: string): QueueStatsLine | undefined {
  let text: string;
  try {
    const read = () => readFileSync('/proc/net/netfilter/nfnetlink_queue', 'utf8');
    text = netns ? withNetns(netns, read) : read();
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length < 8 || f[0] !== queue || (portid !== undefined && f[1] !== portid)) continue;
    return { portid: f[1], total: f[2], dropped: f[5], userDropped: f[6], idSequence: f[7] };
  }
  return undefined;
}
