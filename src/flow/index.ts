export { FlowBuffer, type OverflowPolicy } from './buffer.js';
export type { NodeStats } from './compile.js';
export { Flowgrab, type FlowgrabOptions } from './flowgrab.js';
export {
  type AuthorizeInput,
  type Authorizer,
  FlowHandle,
  type FlowOptions,
  type FlowStats,
  type LossNotice,
} from './handle.js';
export {
  FLOW_OPS,
  FLOW_STATES,
  type FlowOp,
  type FlowState,
  InvalidStateError,
  TRANSITIONS,
  transition,
} from './states.js';
