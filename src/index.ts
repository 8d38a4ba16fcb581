/** flowgrab: the kernel's view of network traffic as typed RxJS streams. */
export { type ErrorCode, DecodeError, FlowgrabError } from './errors.js';
export * from './sources/index.js';
export { NetlinkOpError } from './netlink/socket.js';
export { withNetns } from './netlink/syscall.js';
export const VERSION = '0.1.0';
