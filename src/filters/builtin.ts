/**
 * The built-in sources and filters, in one explicit table. The registry is
 * filled from it once; registerSource()/registerFilter() add nodes under new
 * names only, so no import order can swap a built-in (the policy inserts
 * scope, redact and ratelimit by name).
 */
import { countFilter, sumFilter, topFilter, windowFilter } from './lib/aggregate.js';
import { anonymizeFilter } from './lib/anonymize.js';
import { dedupeFilter } from './lib/dedupe.js';
import { enrichFilter } from './lib/enrich.js';
import { matchFilter } from './lib/match.js';
import { mergeFilter } from './lib/merge.js';
import { projectFilter } from './lib/project.js';
import { ratelimitFilter } from './lib/ratelimit.js';
import { sampleFilter } from './lib/sample.js';
import { redactFilter, scopeFilter } from './lib/scope.js';
import { installBuiltins, type RegisteredNode } from './registry.js';
import { arpSource, conntrackSource, dnsSource, natsSource, nfqueueSource, replaySource } from './sources.js';

export const BUILTIN_NODES: readonly RegisteredNode[] = [
  // sources
  nfqueueSource,
  arpSource,
  conntrackSource,
  dnsSource,
  natsSource,
  replaySource,
  // filters
  matchFilter,
  projectFilter,
  dedupeFilter,
  sampleFilter,
  ratelimitFilter,
  countFilter,
  sumFilter,
  topFilter,
  windowFilter,
  mergeFilter,
  enrichFilter,
  anonymizeFilter,
  scopeFilter,
  redactFilter,
];

installBuiltins(BUILTIN_NODES);
