export * from './arp/index.js';
export * from './conntrack/index.js';
export * from './dns/index.js';
export * from './firewall/index.js';
export * from './nfqueue/index.js';
export { type NoticeObserver, publishNotice, type SourceNotice } from './notice.js';
export { type ReadyObserver, signalReady } from './ready.js';
export { type Lease, SharedRegistry } from './sharing.js';
export { readSysctl, writeSysctl } from './sysctl.js';
