/**
 * The flow handle's life, as one table that the code and the tests both
 * read (after FFPF): created → populated → instantiated → active ⇄ paused,
 * and any state → closed.
 */
import { FlowgrabError } from '../errors.js';

/** A flow handle's state: created → populated → instantiated → active ⇄ paused → closed. */
export type FlowState = 'created' | 'populated' | 'instantiated' | 'active' | 'paused' | 'closed';
/** An operation that moves a flow handle between states. */
export type FlowOp = 'populate' | 'instantiate' | 'activate' | 'pause' | 'close';

export const TRANSITIONS: Readonly<Record<FlowState, Partial<Record<FlowOp, FlowState>>>> = {
  created: { populate: 'populated', close: 'closed' },
  populated: { populate: 'populated', instantiate: 'instantiated', close: 'closed' },
  instantiated: { activate: 'active', close: 'closed' },
  active: { pause: 'paused', close: 'closed' },
  paused: { activate: 'active', close: 'closed' },
  closed: { close: 'closed' },
};

export const FLOW_STATES = Object.keys(TRANSITIONS) as FlowState[];
export const FLOW_OPS: FlowOp[] = ['populate', 'instantiate', 'activate', 'pause', 'close'];

/** A flow operation not allowed in the current state; names the state and the allowed transitions. */
export class InvalidStateError extends FlowgrabError {
  readonly state: FlowState;
  readonly attempted: FlowOp;
  readonly allowed: FlowOp[];
  constructor(state: FlowState, op: FlowOp) {
    const allowed = Object.keys(TRANSITIONS[state]) as FlowOp[];
    super('FG_ERR_INVALID_STATE', `cannot ${op} a flow that is ${state}; allowed: ${allowed.join(', ')}`, { op });
    this.state = state;
    this.attempted = op;
    this.allowed = allowed;
  }
}

/** The state after `op`, or an InvalidStateError naming the state and what is allowed. */
export function transition(state: FlowState, op: FlowOp): FlowState {
  const next = TRANSITIONS[state][op];
  if (!next) throw new InvalidStateError(state, op);
  return next;
}
