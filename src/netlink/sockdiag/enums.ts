/**
 * sock_diag / unix_diag constants with their C names
 * (include/uapi/linux/sock_diag.h, unix_diag.h). Every number in these
 * messages is host order (little-endian), unlike netfilter's.
 */
export const NETLINK_SOCK_DIAG = 4;
export const SOCK_DIAG_BY_FAMILY = 20;
export const AF_UNIX = 1;

/** sizeof(struct unix_diag_req), sizeof(struct unix_diag_msg). */
export const UNIX_DIAG_REQ_LEN = 24;
export const UNIX_DIAG_MSG_LEN = 16;
/** INET_DIAG_NOCOOKIE: both cookie words all ones, "match any socket with this inode". */
export const SOCK_NOCOOKIE = 0xffffffff;
/** udiag_states: every TCP_* state bit. */
export const UNIX_DIAG_ALL_STATES = 0xffffffff;

/** udiag_show bits: which attributes the reply carries. */
export const UDIAG_SHOW_NAME = 0x01;
export const UDIAG_SHOW_VFS = 0x02;
export const UDIAG_SHOW_PEER = 0x04;
export const UDIAG_SHOW_ICONS = 0x08;
export const UDIAG_SHOW_RQLEN = 0x10;
export const UDIAG_SHOW_MEMINFO = 0x20;
export const UDIAG_SHOW_UID = 0x40;

/** enum UNIX_DIAG_*: reply attributes. */
export const UNIX_DIAG_NAME = 0;
export const UNIX_DIAG_VFS = 1;
export const UNIX_DIAG_PEER = 2;
export const UNIX_DIAG_ICONS = 3;
export const UNIX_DIAG_RQLEN = 4;
export const UNIX_DIAG_MEMINFO = 5;
export const UNIX_DIAG_SHUTDOWN = 6;
export const UNIX_DIAG_UID = 7;

/** Socket types (udiag_type) and the states a Unix socket reports (udiag_state, TCP_* numbering). */
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const TCP_ESTABLISHED = 1;
export const TCP_CLOSE = 7;
export const TCP_LISTEN = 10;
