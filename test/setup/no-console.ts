import { afterEach, beforeEach, vi } from 'vitest';

// The library must not print (docs/architecture.md#no-console): any console output during a test
// is a failure, reported with what was printed.
const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
let printed: string[] = [];

beforeEach(() => {
  printed = [];
  for (const m of methods) {
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      printed.push(`console.${m}: ${args.map(String).join(' ')}`);
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
  if (printed.length > 0) throw new Error(`unexpected console output:\n${printed.join('\n')}`);
});
