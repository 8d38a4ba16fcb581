/** nfnetlink_queue constants with their C names (include/uapi/linux/netfilter/nfnetlink_queue.h). */
export const NFQNL_MSG_PACKET = 0;
export const NFQNL_MSG_VERDICT = 1;
export const NFQNL_MSG_CONFIG = 2;
/** Applies one verdict to every queued packet whose id is ≤ the given one. */
export const NFQNL_MSG_VERDICT_BATCH = 3;

export const NFQA_PACKET_HDR = 1;
export const NFQA_VERDICT_HDR = 2;
export const NFQA_MARK = 3;
export const NFQA_TIMESTAMP = 4;
export const NFQA_IFINDEX_INDEV = 5;
export const NFQA_IFINDEX_OUTDEV = 6;
export const NFQA_IFINDEX_PHYSINDEV = 7;
export const NFQA_IFINDEX_PHYSOUTDEV = 8;
export const NFQA_HWADDR = 9;
export const NFQA_PAYLOAD = 10;
/** A ctnetlink entry (nested): decodeCtEntry reads it. Sent with NFQA_CFG_F_CONNTRACK. */
export const NFQA_CT = 11;
export const NFQA_CT_INFO = 12;
/** The packet's real length, sent when the copy was cut at copy_range. */
export const NFQA_CAP_LEN = 13;
export const NFQA_SKB_INFO = 14;
export const NFQA_EXP = 15;
export const NFQA_UID = 16;
export const NFQA_GID = 17;
export const NFQA_SECCTX = 18;
export const NFQA_VLAN = 19;
export const NFQA_L2HDR = 20;
export const NFQA_PRIORITY = 21;
export const NFQA_CGROUP_CLASSID = 22;

export const NFQA_CFG_CMD = 1;
export const NFQA_CFG_PARAMS = 2;
export const NFQA_CFG_QUEUE_MAXLEN = 3;
export const NFQA_CFG_MASK = 4;
export const NFQA_CFG_FLAGS = 5;

export const NFQNL_CFG_CMD_NONE = 0;
export const NFQNL_CFG_CMD_BIND = 1;
export const NFQNL_CFG_CMD_UNBIND = 2;
export const NFQNL_CFG_CMD_PF_BIND = 3;
export const NFQNL_CFG_CMD_PF_UNBIND = 4;

export const NFQNL_COPY_NONE = 0;
export const NFQNL_COPY_META = 1;
export const NFQNL_COPY_PACKET = 2;

/** Accept packets the queue cannot take (full queue, full socket buffer) instead of dropping them. */
export const NFQA_CFG_F_FAIL_OPEN = 0x1;
export const NFQA_CFG_F_CONNTRACK = 0x2;
export const NFQA_CFG_F_GSO = 0x4;
export const NFQA_CFG_F_UID_GID = 0x8;
export const NFQA_CFG_F_SECCTX = 0x10;

/** NFQA_SKB_INFO bits. */
export const NFQA_SKB_CSUMNOTREADY = 0x1;
export const NFQA_SKB_GSO = 0x2;
export const NFQA_SKB_CSUM_NOTVERIFIED = 0x4;

/** Netfilter verdicts (include/uapi/linux/netfilter.h). */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;
export const NF_STOLEN = 2;
export const NF_QUEUE = 3;
/** Re-runs the hook from its start: loops unless a rule skips packets marked by the verdict. */
export const NF_REPEAT = 4;
export const NF_STOP = 5;

/** Netfilter hooks (enum nf_inet_hooks), index = value. */
export const NF_INET_HOOK_NAMES = ['prerouting', 'input', 'forward', 'output', 'postrouting'] as const;
