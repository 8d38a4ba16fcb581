import '../filters/builtin.js';

export { type AuthContext, type AuthResult, authorize, safeAuthorize } from './authorize.js';
export { policyAuthorizer } from './flowgrab.js';
export { identityOfUid, identityOfUser } from './identity.js';
export { loadPolicy, PolicyError, parsePolicy } from './load.js';
export { graphNodes, graphPaths, type PathStep } from './paths.js';
export { type Identity, Policy, type PolicyInput, Principal, principalFor, ROOT_PRINCIPAL, Who } from './policy.js';
