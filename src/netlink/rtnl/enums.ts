/**
 * rtnetlink constants with their C names (include/uapi/linux/rtnetlink.h,
 * neighbour.h, if_link.h, if.h). Values checked against kernel 6.18.
 * Address families (AF_INET, AF_BRIDGE …) live in ../nfnetlink.ts.
 */
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

/** Multicast groups (enum rtnetlink_groups), 1-based as bind()/NETLINK_ADD_MEMBERSHIP take them. */
export const RTNLGRP_LINK = 1;
export const RTNLGRP_NEIGH = 3;

/** sizeof(struct ndmsg), sizeof(struct ifinfomsg). */
export const NDMSG_LEN = 12;
export const IFINFOMSG_LEN = 16;

/** enum NDA_*: neighbour attributes. */
export const NDA_UNSPEC = 0;
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_CACHEINFO = 3;
export const NDA_PROBES = 4;
export const NDA_VLAN = 5;
export const NDA_PORT = 6;
export const NDA_VNI = 7;
export const NDA_IFINDEX = 8;
export const NDA_MASTER = 9;
export const NDA_LINK_NETNSID = 10;
export const NDA_SRC_VNI = 11;
export const NDA_PROTOCOL = 12;
export const NDA_NH_ID = 13;
export const NDA_FDB_EXT_ATTRS = 14;
export const NDA_FLAGS_EXT = 15;
export const NDA_NDM_STATE_MASK = 16;
export const NDA_NDM_FLAGS_MASK = 17;

/** Neighbour Unreachability Detection states (ndm_state bits). */
export const NUD_NONE = 0x00;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

/** ndm_state bits by name, lowest first (the order `ip neigh` prints them in). */
export const NUD_STATE_BITS: ReadonlyArray<readonly [number, NudStateName]> = [
  [NUD_INCOMPLETE, 'INCOMPLETE'],
  [NUD_REACHABLE, 'REACHABLE'],
  [NUD_STALE, 'STALE'],
  [NUD_DELAY, 'DELAY'],
  [NUD_PROBE, 'PROBE'],
  [NUD_FAILED, 'FAILED'],
  [NUD_NOARP, 'NOARP'],
  [NUD_PERMANENT, 'PERMANENT'],
];
export type NudStateName =
  | 'INCOMPLETE'
  | 'REACHABLE'
  | 'STALE'
  | 'DELAY'
  | 'PROBE'
  | 'FAILED'
  | 'NOARP'
  | 'PERMANENT'
  | 'NONE';

/** ndm_flags. */
export const NTF_USE = 0x01;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;
export const NTF_PROXY = 0x08;
export const NTF_EXT_LEARNED = 0x10;
export const NTF_OFFLOADED = 0x20;
export const NTF_STICKY = 0x40;
export const NTF_ROUTER = 0x80;

/** NDA_FLAGS_EXT bits. */
export const NTF_EXT_MANAGED = 0x01;
export const NTF_EXT_LOCKED = 0x02;

/** ndm_type takes route types (enum rtn_type). */
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;

/** enum IFLA_*: link attributes flowgrab interprets (the rest are kept raw). */
export const IFLA_UNSPEC = 0;
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_QDISC = 6;
export const IFLA_STATS = 7;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
export const IFLA_EXT_MASK = 29;

/** enum IFLA_INFO_*: inside IFLA_LINKINFO. */
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_XSTATS = 3;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;

/** enum net_device_flags (ifi_flags). */
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_PROMISC = 0x100;
export const IFF_MASTER = 0x400;
export const IFF_SLAVE = 0x800;
export const IFF_MULTICAST = 0x1000;
export const IFF_LOWER_UP = 0x10000;

/** ifi_type (ARPHRD_*), the common ones. */
export const ARPHRD_ETHER = 1;
export const ARPHRD_LOOPBACK = 772;
export const ARPHRD_NONE = 0xfffe;
