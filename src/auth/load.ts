/** Reading a policy file with messages a person can act on: the path in the file, what was expected, what was there. */
import '../filters/builtin.js';
import { FlowgrabError } from '../errors.js';
import { ANY_FIELDS } from '../filters/fields.js';
import { Duration } from '../filters/params.js';
import { lookupNode, registeredNames, suggestNode } from '../filters/registry.js';
import { readTrustedFile } from '../util/trusted-file.js';
import { paramKeyProblems } from './params.js';
import { type Policy, Policy as PolicySchema, type Principal } from './policy.js';

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
    // Names must name something: a typo in a limit, a rule or a redaction would silently allow what it meant to stop.
    const problems = r.data.principals.flatMap((p, i) =>
      [...paramKeyProblems(Object.keys(p.params)), ...limitProblems(p), ...ruleProblems(p)].map(
        (m) => `principals[${i}].${m}`,
      ),
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

/**
 * Limits that would not limit: an empty one ({} allowed any namespace), a namespace rule without its list, a
 * duration no timer can wait (it refused every value, with a wrong reason).
 */
function limitProblems(p: Principal): string[] {
  const out: string[] = [];
  for (const [key, lim] of Object.entries(p.params)) {
    if (lim.max === undefined && lim.min === undefined && lim.oneOf === undefined)
      out.push(`params."${key}": an empty limit limits nothing: give max, min or oneOf`);
    else if (key.endsWith('.netns') && lim.oneOf === undefined)
      out.push(`params."${key}": namespaces are allowed by name: give oneOf`);
    for (const side of ['max', 'min'] as const) {
      const b = lim[side];
      if (typeof b !== 'string') continue;
      const d = Duration.safeParse(b);
      if (!d.success) out.push(`params."${key}".${side}: ${JSON.stringify(b)}: ${d.error.issues[0]?.message}`);
    }
  }
  return out;
}

/** Order rules and redactions must name nodes and fields that exist. */
function ruleProblems(p: Principal): string[] {
  const out: string[] = [];
  const nodeNamed = (what: string, name: string) => {
    if (lookupNode(name)) return;
    const near = suggestNode(name);
    out.push(`${what}: no source or filter is named ${name}${near ? ` (did you mean ${near}?)` : ''}`);
  };
  p.order.forEach((rule, j) => {
    nodeNamed(`order[${j}].filter`, rule.filter);
    nodeNamed(`order[${j}].requires`, rule.requires);
  });
  const catalogs = registeredNames()
    .sources.map((name) => lookupNode(name))
    .flatMap((def) =>
      def?.kind === 'source' && def.fields instanceof Map && def.fields !== ANY_FIELDS ? [def.fields] : [],
    );
  p.redact.forEach((field, j) => {
    if (!catalogs.some((cat) => cat.has(field))) out.push(`redact[${j}]: no source's records have a field ${field}`);
  });
  return out;
}

/** The largest policy file read: a policy of many thousand principals is far below it. */
const MAX_POLICY_BYTES = 16 << 20;

/**
 * Reads and parses the policy file `file`; throws PolicyError when it is invalid, FlowgrabError when it cannot be
 * read or another user could have changed it (FG_ERR_PERMISSION: see readTrustedFile; as sshd's StrictModes, a
 * policy someone else may write is no policy).
 */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readTrustedFile(file, 'policy', { maxBytes: MAX_POLICY_BYTES });
  } catch (cause) {
    if (cause instanceof FlowgrabError) throw cause;
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `policy ${file}: cannot read it (${(cause as NodeJS.ErrnoException).code})`,
      { op: 'policy', cause },
    );
  }
  return parsePolicy(text, file);
}
