import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPolicy, parsePolicy } from '../../../src/auth/load.js';

const file = new URL('../../../examples/policy.json', import.meta.url).pathname;

describe('examples/policy.json', () => {
  it('loads with the policy loader', () => {
    const p = loadPolicy(file);
    expect(p.principals).toHaveLength(2);
    const [user, group] = p.principals;
    expect(user.who).toEqual({ user: 'alice' });
    expect(user.sources).toEqual(['conntrack', 'dns']);
    expect(user.scope).toEqual(['10.1.0.0/24', 'fd00:1::/64']);
    expect(user.redact).toEqual(['mark', 'uid']);
    expect(user.limits.bufferRecords).toBe(5000);
    expect(group.who).toEqual({ group: 'netops' });
    expect(group.marks).toEqual(['0x10/0xf0']);
    expect(group.verdicts).toBe(true);
    expect(group.capabilities).toContain('read-files');
  });

  it('parses the same from its text', () => {
    expect(() => parsePolicy(readFileSync(file, 'utf8'), file)).not.toThrow();
  });

  it('is referenced from the README', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('examples/policy.json');
  });
});
