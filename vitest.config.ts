import { availableParallelism } from 'node:os';
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

// Integration files that load the whole machine: floods of 10 000 to 60 000
// conntrack entries, made while an event loop is blocked on purpose, whose
// tests count every event and the kernel's drops. Their namespaces are their
// own, but the CPU is not: they run one at a time, after the others, so
// neither they nor the other files lose events to each other's load.
const SERIAL = [
  'test/integration/conntrack-burst.test.ts',
  'test/integration/conntrack-overflow.test.ts',
  'test/integration/conntrack-reliable.test.ts',
  'test/integration/daemon-stuck-reader.test.ts',
  'test/integration/netlink-batched.test.ts',
];

// Unit and integration files run side by side, WORKERS at a time (2 on the
// 2-core CI box): most integration time is spent waiting on other processes
// and the kernel (each test makes uniquely named namespaces, users, temp dirs
// and free ports, so files never share state). `integration-serial` (root
// too) runs last, one file at a time. Projects with the same groupOrder must
// have the same maxWorkers.
const WORKERS = Math.max(2, availableParallelism());
const integration = {
  setupFiles: ['test/setup/no-console.ts', 'test/setup/require-root.ts'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/setup/no-console.ts'],
          maxWorkers: WORKERS,
          // One worker process runs many unit files in turn, keeping the modules it imported: a fresh process
          // and module graph per file cost ~4x the CPU of the tests themselves (107 s against 25 s user+sys
          // for the unit project). Unit files keep no process-wide state between them (no vi.mock, no globals
          // left stubbed; fake timers are restored after each test).
          isolate: false,
          // Property tests run thousands of cases: on a loaded 2-core machine 5 s is not enough.
          testTimeout: 30_000,
        },
      },
      {
        resolve,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: SERIAL,
          maxWorkers: WORKERS,
          ...integration,
        },
      },
      {
        resolve,
        test: {
          name: 'integration-serial',
          include: SERIAL,
          fileParallelism: false,
          ...integration,
        },
      },
    ],
  },
});
