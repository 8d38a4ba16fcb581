import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/architecture.md#import-rule: no cycles, no file importing from a layer above its own.
describe('import rules', () => {
  it('src/ and examples/ have no import cycle and no upward import', () => {
    const root = join(import.meta.dirname, '..', '..');
    const r = spawnSync(process.execPath, [join(root, 'scripts/check-imports.mjs'), root], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/no cycles, no upward imports/);
  });
});
