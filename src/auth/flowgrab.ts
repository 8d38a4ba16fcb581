/** The policy engine as a Flowgrab authorization hook: `new Flowgrab({ authorize: policyAuthorizer(policy, identity) })`. */
import type { Authorizer } from '../flow/handle.js';
import { authorize } from './authorize.js';
import type { Identity, Policy } from './policy.js';

export function policyAuthorizer(policy: Policy | (() => Policy), id: Identity): Authorizer {
  return (g, ctx) => {
    const r = authorize(g, id, typeof policy === 'function' ? policy() : policy, ctx);
    return { issues: r.issues, graph: r.graph };
  };
}
