/**
 * The flow handle's life as documented (docs/architecture.md, "Flow
 * handle"), written out here rather than read from src/flow/states.ts: a
 * wrong edit to the table there must fail the tests, not be copied into
 * their expectations.
 */
import type { FlowOp, FlowState } from '../../src/flow/states.js';

export const EXPECTED_TRANSITIONS: Readonly<Record<FlowState, Partial<Record<FlowOp, FlowState>>>> = {
  created: { populate: 'populated', close: 'closed' },
  populated: { populate: 'populated', instantiate: 'instantiated', close: 'closed' },
  instantiated: { activate: 'active', close: 'closed' },
  active: { pause: 'paused', close: 'closed' },
  paused: { activate: 'active', close: 'closed' },
  closed: { close: 'closed' },
};
export const EXPECTED_STATES: FlowState[] = ['created', 'populated', 'instantiated', 'active', 'paused', 'closed'];
export const EXPECTED_OPS: FlowOp[] = ['populate', 'instantiate', 'activate', 'pause', 'close'];
