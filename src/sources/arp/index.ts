export { isUsable, nudStateNames, toNeighRecord } from './build.js';
export { type ArpConfig, type ArpOptionsInput, parseArpOptions } from './options.js';
export { NeighRecord, type NeighRecordType, NeighState, type NeighStateName } from './record.js';
export { arp, arpFeedRefs } from './source.js';
