/** Registers the built-in sources and filters. */
import './sources.js';
import './lib/aggregate.js';
import './lib/anonymize.js';
import './lib/dedupe.js';
import './lib/enrich.js';
import './lib/match.js';
import './lib/merge.js';
import './lib/project.js';
import './lib/ratelimit.js';
import './lib/sample.js';
import './lib/scope.js';
