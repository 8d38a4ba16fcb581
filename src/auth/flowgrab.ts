/** The policy engine as a Flowgrab authorization hook: `new Flowgrab({ authorize: policyAuthorizer(policy, identity) })`. */
import type { Authorizer } from '../flow/handle.js';
import { type AuthContext, authorize } from './authorize.js';
import type { Identity, Policy } from './policy.js';

/** `extra`: what the caller knows beyond the flow (reserved queues, the anonymization secret). */
export function policyAuthorizer(policy: Policy | (() => Policy), id: Identity, extra: AuthContext = {}): Authorizer {
  return (g, ctx) => {
    const r = authorize(g, id, typeof policy === 'function' ? policy() : policy, { ...extra, ...ctx });
    return { issues: r.issues, graph: r.graph };
  };
}
