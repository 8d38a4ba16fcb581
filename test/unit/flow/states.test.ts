import { describe, expect, it } from 'vitest';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import type { FlowHandle } from '../../../src/flow/handle.js';
import {
  FLOW_OPS,
  FLOW_STATES,
  type FlowOp,
  type FlowState,
  InvalidStateError,
  TRANSITIONS,
} from '../../../src/flow/states.js';
import '../../../src/testing/fake-source.js';
import { EXPECTED_OPS, EXPECTED_STATES, EXPECTED_TRANSITIONS } from '../../helpers/flow-states.js';

const GRAPH = 'fake(feed=states) -> match(proto == tcp)';

const EXPECTED = EXPECTED_TRANSITIONS;
const STATES = EXPECTED_STATES;
const OPS = EXPECTED_OPS;

it('the exported table, states and operations are the documented ones', () => {
  expect(TRANSITIONS).toEqual(EXPECTED);
  expect([...FLOW_STATES].sort()).toEqual([...STATES].sort());
  expect([...FLOW_OPS].sort()).toEqual([...OPS].sort());
});

/** Drives a fresh handle into `state` through the public API. */
async function inState(fg: Flowgrab, state: FlowState): Promise<FlowHandle> {
  const f = fg.create();
  const path: Record<FlowState, FlowOp[]> = {
    created: [],
    populated: ['populate'],
    instantiated: ['populate', 'instantiate'],
    active: ['populate', 'instantiate', 'activate'],
    paused: ['populate', 'instantiate', 'activate', 'pause'],
    closed: ['close'],
  };
  for (const op of path[state]) await apply(f, op);
  expect(f.state).toBe(state);
  return f;
}

async function apply(f: FlowHandle, op: FlowOp): Promise<void> {
  if (op === 'populate') f.populate(GRAPH);
  else await f[op]();
}

describe('flow handle transitions (every state × every operation)', () => {
  const fg = new Flowgrab();
  for (const state of STATES) {
    for (const op of OPS) {
      const next = EXPECTED[state][op];
      it(`${state} --${op}--> ${next ?? 'InvalidStateError'}`, async () => {
        const f = await inState(fg, state);
        if (next) {
          await apply(f, op);
          expect(f.state).toBe(next);
        } else {
          const err = await apply(f, op).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(InvalidStateError);
          expect((err as InvalidStateError).message).toMatch(
            new RegExp(`cannot ${op} a flow that is ${state}; allowed: ${Object.keys(EXPECTED[state]).join(', ')}`),
          );
          expect(f.state).toBe(state);
        }
        await f.close();
      });
    }
  }
});
