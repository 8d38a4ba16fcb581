import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FlowgrabError } from '../../../src/errors.js';
import { BUILTIN_NODES } from '../../../src/filters/builtin.js';
import {
  installBuiltins,
  isBuiltinNode,
  lookupNode,
  type Rec,
  registeredNames,
  registerFilter,
  registerSource,
} from '../../../src/filters/registry.js';

const passThrough = {
  description: 'test',
  params: z.object({}).strict(),
  step: () => (r: Rec, emit: (r: Rec) => void) => emit(r),
};

function refusal(fn: () => void): FlowgrabError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FlowgrabError);
    return e as FlowgrabError;
  }
  throw new Error('expected a refusal');
}

describe('filter registry: one explicit table, no silent overwrite', () => {
  it('holds exactly the built-in table, each name once', () => {
    const names = BUILTIN_NODES.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    const got = registeredNames();
    for (const d of BUILTIN_NODES) {
      expect(lookupNode(d.name)).toBe(d);
      expect(isBuiltinNode(d.name)).toBe(true);
      expect(got[d.kind === 'source' ? 'sources' : 'filters']).toContain(d.name);
    }
  });

  it.each([
    'scope',
    'redact',
    'ratelimit',
    'match',
    'anonymize',
  ])('refuses to replace the built-in filter %s, which stays in place', (name) => {
    const before = lookupNode(name);
    const e = refusal(() => registerFilter({ name, ...passThrough }));
    expect(e.code).toBe('FG_ERR_INVALID_ARGUMENT');
    expect(e.message).toContain(`filter ${name}: the name is taken by the built-in filter`);
    expect(lookupNode(name)).toBe(before);
  });

  it('refuses a source under a built-in filter name, and a filter under a built-in source name', () => {
    const before = lookupNode('conntrack');
    expect(refusal(() => registerFilter({ name: 'conntrack', ...passThrough })).message).toContain('built-in source');
    expect(lookupNode('conntrack')).toBe(before);
    const e = refusal(() =>
      registerSource({
        name: 'scope',
        description: 't',
        params: z.object({}),
        fields: new Map(),
        create: () => undefined as never,
      }),
    );
    expect(e.message).toContain('source scope: the name is taken by the built-in filter');
  });

  it('adds a user filter under a new name once; the second registration is refused', () => {
    const name = `mine_${process.pid}`;
    registerFilter({ name, ...passThrough });
    const first = lookupNode(name);
    expect(first?.kind).toBe('filter');
    expect(isBuiltinNode(name)).toBe(false);
    expect(refusal(() => registerFilter({ name, ...passThrough })).message).toContain('a registered filter');
    expect(lookupNode(name)).toBe(first);
  });

  it('refuses a filter with neither step nor create, and a second install of the table', () => {
    expect(
      refusal(() => registerFilter({ name: `empty_${process.pid}`, description: 'x', params: z.object({}) })).code,
    ).toBe('FG_ERR_INVALID_ARGUMENT');
    expect(refusal(() => installBuiltins(BUILTIN_NODES)).code).toBe('FG_ERR_INVALID_STATE');
  });
});
