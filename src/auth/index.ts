import '../filters/builtin.js';

export { type AuthContext, type AuthResult, authorize, POLICY_SECRET, safeAuthorize } from './authorize.js';
export { policyAuthorizer } from './flowgrab.js';
export { identityOfUid, identityOfUser } from './identity.js';
export { loadPolicy, PolicyError, parsePolicy } from './load.js';
export { markAllowed, parseMark } from './marks.js';
export { checkOrder, IDENTIFYING_FIELDS } from './order.js';
export { graphNodes, graphPaths, MAX_PATHS, type PathStep } from './paths.js';
export { type Identity, Policy, type PolicyInput, Principal, principalFor, ROOT_PRINCIPAL, Who } from './policy.js';
