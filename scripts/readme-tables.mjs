#!/usr/bin/env node
// Writes the README's source and filter tables (section "The graph language")
// from the built registry: run `npm run docs:tables` (it builds first).
// With --check, exits 1 when the README's tables differ instead of writing.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const { currentNodeTables, renderNodeTables, replaceNodeTables } = await import(
  join(root, 'dist/src/cli/node-tables.js')
);
const file = join(root, 'README.md');
const readme = readFileSync(file, 'utf8');
const tables = renderNodeTables();
if (process.argv.includes('--check')) {
  if (currentNodeTables(readme) !== tables) {
    console.error('README.md: the source and filter tables differ from the registry; run npm run docs:tables');
    process.exit(1);
  }
} else {
  const next = replaceNodeTables(readme, tables);
  if (next !== readme) writeFileSync(file, next);
  console.log(next === readme ? 'README.md: tables up to date' : 'README.md: tables regenerated');
}
