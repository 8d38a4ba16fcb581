/** Reading a policy file with messages a person can act on: the path in the file, what was expected, what was there. */
import { readFileSync } from 'node:fs';
import '../filters/builtin.js';
import { FlowgrabError } from '../errors.js';
import { paramKeyProblems } from './params.js';
import { type Policy, Policy as PolicySchema } from './policy.js';

export class PolicyError extends FlowgrabError {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super('FG_ERR_INVALID_ARGUMENT', `policy ${file}: ${problems.join('; ')}`, { op: 'policy' });
    this.problems = problems;
  }
}

function at(path: PropertyKey[]): string {
  return path.length
    ? path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
        .join('')
        .replace(/^\./, '')
    : '(top)';
}

/** Parses and checks a policy (JSON text); throws PolicyError naming `file` and every problem with its path. */
export function parsePolicy(text: string, file = 'policy'): Policy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(file, [`not JSON: ${(err as Error).message}`]);
  }
  const r = PolicySchema.safeParse(json);
  if (r.success) {
    // Parameter limits must name a parameter that exists: a typo would silently limit nothing.
    const problems = r.data.principals.flatMap((p, i) =>
      paramKeyProblems(Object.keys(p.params)).map((m) => `principals[${i}].${m}`),
    );
    if (problems.length) throw new PolicyError(file, problems);
    return r.data;
  }
  throw new PolicyError(
    file,
    r.error.issues.map((i) => {
      const got = i.path.reduce<unknown>(
        (o, k) => (o && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k] : undefined),
        json,
      );
      const shown = got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 60);
      return `${at(i.path)}: ${i.message} (got ${shown})`;
    }),
  );
}

/** Reads and parses the policy file `file`; throws PolicyError when it cannot be read or is invalid. */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `policy ${file}: cannot read it (${(cause as NodeJS.ErrnoException).code})`,
      { op: 'policy', cause },
    );
  }
  return parsePolicy(text, file);
}
