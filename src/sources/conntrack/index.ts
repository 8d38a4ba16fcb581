export { type DeleteOptions, deleteConntrack, deleteConntrackTuple } from './delete.js';
export { conntrackToJson } from './json.js';
export {
  type ConntrackConfig,
  type ConntrackOptionsInput,
  CT_EVENT_NAMES,
  type CtEventName,
  parseConntrackOptions,
} from './options.js';
export { ConntrackEnd, ConntrackRecord, type ConntrackRecordType, Counters, toConntrackRecord } from './record.js';
export { conntrack, conntrackFeedRefs } from './source.js';
export { statusNames } from './status.js';
