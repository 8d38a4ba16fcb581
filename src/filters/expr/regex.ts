/**
 * `field ~ /pattern/flags` runs on RE2 semantics (re2js, a pure-JS port of
 * RE2), never on V8's backtracking engine. Why: the daemon has one thread
 * and the patterns come from any local user; a backtracking engine takes
 * exponential time on patterns like /^(.|.|.)*X$/ and no syntax check can
 * rule out every such pattern, while RE2 simulates the automaton and runs in
 * time linear in the input for every pattern it accepts. It refuses
 * backreferences and lookaround (which need backtracking) with a clear
 * message. The price is speed: 0.2–0.5 µs per test of a 20-character value
 * against ~0.07 µs for a native RegExp (measured on a loaded 2-core box;
 * 3–6 times slower), small next to decoding a record. Patterns are bounded
 * in length and in compiled program size.
 *
 * Compiling is not bounded by those alone: `(\pL|\pN){1000}` is 15
 * characters and 3 002 instructions, but copies two Unicode classes of
 * hundreds of ranges a thousand times (7–15 ms), and a graph may hold 255
 * such matches, each compiled at parse, check and build: 1.8 s of the
 * daemon's one thread per instantiate. So compiled patterns are kept (by
 * source and flags, LRU), and the patterns of one graph (withRegexBudget:
 * parseGraph, Compiler.check and build) may take REGEX_BUDGET_MS of
 * compiling in all; past it the graph is refused.
 */
import { RE2JS } from 're2js';
import { Lru } from '../../util/lru.js';
import { GRAPH_LIMITS } from '../limits.js';

/** Instructions of a compiled program; a short pattern with big counted repeats (a{1000}){1000} is refused. */
export const MAX_PROGRAM_SIZE = 10_000;

const FLAGS: Record<string, number> = {
  i: RE2JS.CASE_INSENSITIVE,
  m: RE2JS.MULTILINE,
  s: RE2JS.DOTALL,
  u: 0, // RE2 works on code points already
};

export class RegexError extends Error {}

/** Milliseconds of compiling the patterns of one graph may take (cached ones cost nothing). */
export const REGEX_BUDGET_MS = 100;
/** Compiled patterns kept, and the refusals (a refusal can cost as much as a compile). */
const compiled = new Lru<string, RE2JS | RegexError>(512);
/** Patterns compiled (not found kept), for tests. */
export const regexStats = { compiles: 0 };
/** What the graph being read may still spend compiling (ms); Infinity outside withRegexBudget. */
let budgetLeft = Number.POSITIVE_INFINITY;

/**
 * Runs `f` (reading, checking or building one graph) with REGEX_BUDGET_MS of regex compiling to spend; inside
 * another such run it shares that run's budget.
 */
export function withRegexBudget<T>(f: () => T): T {
  if (budgetLeft !== Number.POSITIVE_INFINITY) return f();
  budgetLeft = REGEX_BUDGET_MS;
  try {
    return f();
  } finally {
    budgetLeft = Number.POSITIVE_INFINITY;
  }
}

/** Compiles a user pattern or throws RegexError with a sentence saying why not. */
export function compileRegex(source: string, flags: string): (v: string) => boolean {
  const key = `${flags}/${source}`;
  let re = compiled.get(key);
  if (re === undefined) {
    if (budgetLeft <= 0)
      throw new RegexError(
        `the graph's regular expressions take more than ${REGEX_BUDGET_MS} ms to compile: use fewer or simpler patterns`,
      );
    const t0 = performance.now();
    regexStats.compiles++;
    try {
      re = compile(source, flags);
    } catch (err) {
      if (!(err instanceof RegexError)) throw err;
      re = err;
    }
    budgetLeft -= performance.now() - t0;
    compiled.set(key, re);
  }
  if (re instanceof RegexError) throw re;
  const program = re;
  return (v) => program.test(v);
}

function compile(source: string, flags: string): RE2JS {
  if (source.length > GRAPH_LIMITS.patternLength)
    throw new RegexError(`pattern of ${source.length} characters is above the limit of ${GRAPH_LIMITS.patternLength}`);
  let bits = 0;
  for (const f of flags) {
    if (!(f in FLAGS)) throw new RegexError(`flag "${f}" is not supported (use i, m, s)`);
    bits |= FLAGS[f];
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, bits);
  } catch (err) {
    throw new RegexError(`${(err as Error).message} (patterns follow RE2 syntax: no backreferences or lookaround)`);
  }
  if (re.programSize() > MAX_PROGRAM_SIZE)
    throw new RegexError(
      `pattern compiles to ${re.programSize()} instructions, above the limit of ${MAX_PROGRAM_SIZE}`,
    );
  return re;
}
