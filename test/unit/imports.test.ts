import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('flags a SPIN domain/ file that imports io/, an I/O module or a kernel helper, or starts a timer', () => {
    const root = mkdtempSync(join(tmpdir(), 'fg-imports-'));
    try {
      const domain = join(root, 'examples/spin/domain');
      mkdirSync(join(root, 'src'), { recursive: true });
      mkdirSync(domain, { recursive: true });
      mkdirSync(join(root, 'examples/spin/io'), { recursive: true });
      writeFileSync(join(root, 'examples/spin/io/store.ts'), 'export const store = 1;\n');
      writeFileSync(
        join(domain, 'ok.ts'),
        [
          "import type { ConntrackRecord } from 'flowgrab';",
          "import { formatIP, parseIP, type DnsRecord } from 'flowgrab';",
          "import { isIP } from 'node:net';",
          "import { Subject } from 'rxjs';",
          'export const x = [formatIP, parseIP, isIP, Subject];',
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(domain, 'bad.ts'),
        [
          "import { readFileSync } from 'node:fs';",
          "import { runTool } from 'flowgrab';",
          "import { store } from '../io/store.js';",
          "import 'node:http';",
          'export const t = setTimeout(() => [readFileSync, runTool, store], 1);',
          '',
        ].join('\n'),
      );
      const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../scripts/check-imports.mjs'), root], {
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      const lines = r.stderr.trim().split('\n').sort();
      expect(lines).toEqual(
        [
          'SPIN domain/ not pure: examples/spin/domain/bad.ts imports ../io/store.js (outside domain/)',
          'SPIN domain/ not pure: examples/spin/domain/bad.ts imports node:fs (I/O)',
          'SPIN domain/ not pure: examples/spin/domain/bad.ts imports node:http (I/O)',
          'SPIN domain/ not pure: examples/spin/domain/bad.ts imports runTool from flowgrab (I/O)',
          'SPIN domain/ not pure: examples/spin/domain/bad.ts starts a timer (setTimeout)',
        ].sort(),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
