/**
 * `field ~ /pattern/flags` runs on RE2 semantics (re2js, a pure-JS port of
 * RE2), never on V8's backtracking engine. Why: the daemon has one thread
 * and the patterns come from any local user; a backtracking engine takes
 * exponential time on patterns like /^(.|.|.)*X$/ and no syntax check can
 * rule out every such pattern, while RE2 simulates the automaton and runs in
 * time linear in the input for every pattern it accepts. It refuses
 * backreferences and lookaround (which need backtracking) with a clear
 * message. The price is speed: about 0.1–0.3 µs per test against ~0.02 µs
 * for a native RegExp (bench figures in the issue-13 notes), which is small
 * next to decoding a record. Patterns are bounded in length and in compiled
 * program size, so compiling is bounded too.
 */
import { RE2JS } from 're2js';
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

/** Compiles a user pattern or throws RegexError with a sentence saying why not. */
export function compileRegex(source: string, flags: string): (v: string) => boolean {
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
  return (v) => re.test(v);
}
