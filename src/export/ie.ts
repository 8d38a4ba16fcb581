/**
 * Information element ids, with their IANA names (RFC 7012, the IANA IPFIX
 * registry) so a reader can grep the registry, and the NetFlow v9 field
 * types of RFC 3954 §8 (which share numbers 1–127 with IPFIX).
 */

// IPFIX (IANA "IPFIX Information Elements")
export const octetDeltaCount = 1;
export const packetDeltaCount = 2;
export const protocolIdentifier = 4;
export const tcpControlBits = 6;
export const sourceTransportPort = 7;
export const sourceIPv4Address = 8;
export const destinationTransportPort = 11;
export const destinationIPv4Address = 12;
export const sourceIPv6Address = 27;
export const destinationIPv6Address = 28;
export const icmpTypeCodeIPv4 = 32;
export const exportedMessageTotalCount = 41;
export const exportedFlowRecordTotalCount = 42;
export const icmpTypeCodeIPv6 = 139;
export const flowEndReason = 136;
export const observationDomainId = 149;
export const flowStartMilliseconds = 152;
export const flowEndMilliseconds = 153;
export const systemInitTimeMilliseconds = 160;
export const postNATSourceIPv4Address = 225;
export const postNATDestinationIPv4Address = 226;
export const postNAPTSourceTransportPort = 227;
export const postNAPTDestinationTransportPort = 228;
export const postNATSourceIPv6Address = 281;
export const postNATDestinationIPv6Address = 282;

/** RFC 5103: reverse information elements are the forward ids under this private enterprise number. */
export const REVERSE_PEN = 29305;

// NetFlow v9 (RFC 3954 §8) field type names
export const IN_BYTES = 1;
export const IN_PKTS = 2;
export const PROTOCOL = 4;
export const TCP_FLAGS = 6;
export const L4_SRC_PORT = 7;
export const IPV4_SRC_ADDR = 8;
export const L4_DST_PORT = 11;
export const IPV4_DST_ADDR = 12;
export const LAST_SWITCHED = 21;
export const FIRST_SWITCHED = 22;
export const IPV6_SRC_ADDR = 27;
export const IPV6_DST_ADDR = 28;
export const ICMP_TYPE = 32;

/** flowEndReason values (RFC 7012 §5.10.1). */
export const FLOW_END_REASON = { idle: 1, active: 2, end: 3, forced: 4, resources: 5 } as const;

// Set ids (IPFIX) and FlowSet ids (NetFlow v9) below 256.
export const IPFIX_TEMPLATE_SET = 2;
export const IPFIX_OPTIONS_TEMPLATE_SET = 3;
export const NF9_TEMPLATE_FLOWSET = 0;
