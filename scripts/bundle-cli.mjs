#!/usr/bin/env node
// Bundles the compiled CLIs (dist/src/cli/flowgrab.js, flowgrabd.js) into
// dist/cli/: one file per entry plus a chunk per lazily loaded subcommand, so
// a command loads a handful of files instead of ~60 modules through Node's
// ESM loader (`flowgrab conntrack --dump` on an empty table: ~100 ms less
// CPU, issue 18). The native packages (koffi, netlink) stay outside, as do
// node: builtins. Needs rolldown (in node_modules through vite; to be
// declared a devDependency before the build runs this). Run after `tsc`.
// Usage: node scripts/bundle-cli.mjs
import { dirname, join } from 'node:path';
import { rolldown } from 'rolldown';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const bundle = await rolldown({
  input: {
    flowgrab: join(root, 'dist/src/cli/flowgrab.js'),
    flowgrabd: join(root, 'dist/src/cli/flowgrabd.js'),
  },
  platform: 'node',
  external: [/^koffi(\/|$)/, /^netlink(\/|$)/, /^node:/],
  logLevel: 'warn',
});
await bundle.write({ dir: join(root, 'dist/cli'), format: 'esm', entryFileNames: '[name].js' });
await bundle.close();
console.log('bundled dist/cli/flowgrab.js and dist/cli/flowgrabd.js');
