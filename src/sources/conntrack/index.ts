export { deleteConntrack, deleteConntrackTuple, type DeleteOptions } from './delete.js';
export { ConntrackOptions, type ConntrackOptionsInput, CtEventName } from './options.js';
export { ConntrackEnd, ConntrackRecord, type ConntrackRecordType, Counters, statusNames, toConntrackRecord } from './record.js';
export { conntrack, conntrackFeedRefs } from './source.js';
