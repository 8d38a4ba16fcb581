import './builtin.js';

export { countPaths, pathIssues } from './amplification.js';
export { GraphBuilder, graph } from './builder.js';
export { excerpt, GraphError, type GraphIssue, GraphSyntaxError } from './errors.js';
export type { MatchExpr } from './expr/ast.js';
export { compileMatch, interpretMatch, type Predicate } from './expr/compile.js';
export { ExprSyntaxError, parseMatchExpr } from './expr/parse.js';
export { ANY_FIELDS, catalogOf, type FieldCatalog, type FieldInfo } from './fields.js';
export { recordCost } from './lib/ratelimit.js';
export { ADDRESS_FIELDS, addressMirrors, compileRedact, redactedFields } from './lib/scope.js';
export { checkGraphText, GRAPH_LIMITS, GraphLimitError, measureSpec } from './limits.js';
export { Duration, FieldPath, getPath } from './params.js';
export { parseGraph } from './parser.js';
export { printGraph, printValue } from './print.js';
export {
  type BuildContext,
  CAPABILITIES,
  type Capability,
  type FilterDef,
  lookupNode,
  nodeCapabilities,
  type Rec,
  registeredNames,
  registerFilter,
  registerSource,
  type SourceDef,
} from './registry.js';
export type { RecordingHeader } from './replay.js';
export { ExprSpec, GraphSpec, NodeSpec, node, type Value } from './spec.js';
