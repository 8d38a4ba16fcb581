/**
 * A test of something that, broken, would block its process for good (an open or a read of a FIFO): the code runs
 * in a node process of its own, from the build, and the test waits for it with a bound.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** The built module at `path` under dist/ (as `examples/spin/io/watched-file.js`), for an import in such a script. */
export const built = (path: string): string => join(import.meta.dirname, '../../dist', path);

/** Runs ES module `script` in a node process of its own; what it printed. Throws if it runs past `timeoutMs`. */
export function boundedScript(script: string, timeoutMs = 20_000): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { timeout: timeoutMs }).toString();
}
