/** flowgrab: the kernel's view of network traffic as typed RxJS streams. */

export * from './auth/index.js';
export * from './daemon/index.js';
export { DecodeError, type ErrorCode, FlowgrabError } from './errors.js';
export * from './export/index.js';
export * from './filters/index.js';
export * from './flow/index.js';
/** Address bytes ⇄ text as flowgrab's records print them (IPv6 per RFC 5952). */
export { formatIP, parseIP } from './netlink/ip.js';
export { NetlinkOpError } from './netlink/socket.js';
export { withNetns } from './netlink/syscall.js';
export * from './sources/index.js';
export { type LoggedPacket, NflogReader, type NflogReaderOptions } from './sources/nflog/reader.js';
export { VERSION } from './version.js';
