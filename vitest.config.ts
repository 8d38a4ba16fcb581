import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// examples/spin is an npm workspace with a package.json of its own, so its
// sources cannot reach flowgrab through the package's self-reference: the
// names map to what package.json's `exports` give (dist/, built first).
const resolve = {
  alias: [
    { find: /^flowgrab$/, replacement: fileURLToPath(new URL('./dist/src/index.js', import.meta.url)) },
    {
      find: /^flowgrab\/testing$/,
      replacement: fileURLToPath(new URL('./dist/src/testing/index.js', import.meta.url)),
    },
  ],
};

// Two projects: `unit` runs anywhere; `integration` needs root (network
// namespaces, nftables, the real kernel) and runs one file at a time so
// namespaces and sysctls of different files never race.
export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/setup/no-console.ts'],
          // Property tests run thousands of cases: on a loaded 2-core machine 5 s is not enough.
          testTimeout: 30_000,
        },
      },
      {
        resolve,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/setup/no-console.ts', 'test/setup/require-root.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
