import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { currentNodeTables, graphListText, listNodes, renderNodeTables } from '../../../src/cli/node-tables.js';
import { BUILTIN_NODES } from '../../../src/filters/builtin.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('README source and filter tables', () => {
  it('equal the ones generated from the registry', () => {
    const have = currentNodeTables(readme);
    expect(have, 'README.md has no generated node tables: run npm run docs:tables').toBeDefined();
    expect(
      have === renderNodeTables(),
      'README.md: the source and filter tables differ from the registry: run npm run docs:tables',
    ).toBe(true);
  });

  it('name every built-in node', () => {
    const tables = renderNodeTables();
    for (const d of BUILTIN_NODES) expect(tables).toContain(`| \`${d.name}\` |`);
    for (const n of ['arp', 'nfqueue', 'nats', 'scope', 'redact']) expect(tables).toContain(`| \`${n}\` |`);
  });
});

describe('flowgrab graph list', () => {
  it('prints every source and filter with its description and capabilities', () => {
    const text = graphListText();
    const { sources, filters } = listNodes(true);
    for (const n of [...sources, ...filters]) {
      expect(text).toContain(n.name);
      expect(text).toContain(n.description);
    }
    expect(text).toMatch(/replay\s+records from a file[^\n]*\n\s+parameters: file, speed\n\s+capabilities: read-files/);
    expect(text).toContain('capabilities: verdicts');
  });
});
