// Bundles the `flowgrab` command (after tsc) into dist/bin/: one entry and
// shared chunks, rxjs tree-shaken from its ES module build, commander and zod
// inside. Loading ~300 separate modules (rxjs alone is 233 CommonJS files)
// cost ~70 ms of every run before it did any work; a dump of 100 000
// entries takes ~350 ms in all. Packages with native code or big optional
// ones (koffi, netlink, dns-packet, mqtt, nats, prom-client) stay outside and
// load from node_modules as before. The library itself (dist/src) is not
// bundled: its users bring their own rxjs.
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bin');
/** Pure JavaScript packages compiled in; every other package is imported at run time. */
const BUNDLED = new Set(['rxjs', 'tslib', 'commander', 'zod', 're2js']);
const rxjsEsm = join(root, 'node_modules/rxjs/dist/esm');

const packages = {
  name: 'flowgrab-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      if (a.path.startsWith('node:')) return { external: true };
      const name = a.path
        .split('/')
        .slice(0, a.path.startsWith('@') ? 2 : 1)
        .join('/');
      if (!BUNDLED.has(name)) return { external: true };
      // rxjs's "node" export is CommonJS, which esbuild cannot tree-shake: take its ES build.
      if (name === 'rxjs') return { path: join(rxjsEsm, a.path === 'rxjs' ? 'index.js' : `${a.path.slice(5)}.js`) };
      return undefined;
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { flowgrab: join(root, 'dist/src/cli/flowgrab.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins: [packages],
  sourcemap: 'linked',
  // The maps point at dist/src and node_modules, which the package has: no copy of every source inside them.
  sourcesContent: false,
  logLevel: 'warning',
  // commander is CommonJS and requires node: modules; an ES module has no `require` of its own.
  banner: {
    js: "import { createRequire as __flowgrabRequire } from 'node:module'; const require = __flowgrabRequire(import.meta.url);",
  },
});
chmodSync(join(outdir, 'flowgrab.js'), 0o755);
