import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere; `integration` needs root (network
// namespaces, nftables, the real kernel) and runs one file at a time so
// namespaces and sysctls of different files never race.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/setup/no-console.ts'],
        },
      },
      {
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
